"""Real local models through litellm, offline. Slow (model loads, CPU generation): run with -m slow."""

import asyncio
import json
import shutil
import subprocess
import sys

import pytest

from archsearch.llm import LLMClient
from archsearch.llm.litellm_backend import LiteLLMBackend
from archsearch.llm.local import LocalModels
from archsearch.spec import ModelSpec

pytestmark = pytest.mark.slow


def test_two_local_models_answer_and_load_once():
    local = LocalModels(slots=2)
    client = LLMClient(LiteLLMBackend(local))
    msg = [{"role": "user", "content": "What is 6 times 7? Reply with just the number."}]

    async def ask():
        qwen = [client.complete(ModelSpec(id="local/qwen2.5-coder-0.5b"), msg, max_tokens=16, temperature=0.8,
                                sample_index=i) for i in range(3)]
        smol = client.complete(ModelSpec(id="local/smollm2-135m"), msg, max_tokens=16)
        return await asyncio.gather(*qwen, smol)

    results = asyncio.run(ask())
    assert "42" in results[0].text or "42" in results[1].text or "42" in results[2].text
    assert all(r.tokens_out > 0 and r.cost_usd == 0.0 for r in results)
    assert sorted(local._servers) == ["qwen2.5-coder-0.5b", "smollm2-135m"]  # each loaded once
    assert client.stats.calls == 4


@pytest.mark.skipif(not shutil.which("unshare"), reason="needs util-linux unshare to cut the network")
def test_cli_run_answers_with_no_network(root):
    cmd = ["unshare", "--net", sys.executable, "-m", "archsearch.cli", "run", "experiments/gsm8k-local/baseline.yaml",
           "--question", "Tom has 3 boxes with 4 apples each. How many apples does he have?"]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=root, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "12"
    assert "1 calls" in out.stderr


@pytest.mark.skipif(not shutil.which("unshare"), reason="needs util-linux unshare to cut the network")
def test_layered_space_searches_offline_from_the_recorded_pool(root, tmp_path):
    """The archon space on the shipped layered pool: network cut, every call replayed (0 paid), and
    the report carries a posterior for every option and TPR/FPR rows for the LLM judges and tests."""
    for part in ("experiments/humaneval-archon", "spaces", "objectives"):
        shutil.copytree(root / part, tmp_path / part, ignore=shutil.ignore_patterns("out", "*.db"))
    (tmp_path / "experiments/humaneval-local").mkdir()
    shutil.copy(root / "experiments/humaneval-local/calls.sqlite", tmp_path / "experiments/humaneval-local/calls.sqlite")
    cmd = ["unshare", "--net", sys.executable, "-m", "archsearch.cli", "optimize", "experiments/humaneval-archon",
           "--trials", "12"]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads((tmp_path / "experiments/humaneval-archon/out/report.json").read_text())
    assert report["client"]["calls"] == 0 and report["client"]["cache_hits"] > 0
    assert report["surrogate"]["modelled"] and report["options"]
    assert all("posterior_new_questions" in o for o in report["options"])
    assert report["verifiers"] and all(r["tpr"]["low"] <= r["tpr"]["mean"] <= r["tpr"]["high"]
                                       for r in report["verifiers"])
