"""Real local models through litellm, offline. Slow (model loads, CPU generation): run with -m slow."""

import asyncio
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
