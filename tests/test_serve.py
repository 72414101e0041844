"""`archsearch serve`: the official openai client and litellm talk to it, streaming and not; usage,
cost and call-count headers, 429 with Retry-After past the concurrency limit, /healthz, and a
server process that never loads the search stack (optuna, jax, numpyro)."""

import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def test_openai_and_litellm_clients_talk_to_serve(tmp_path):
    out = subprocess.run([sys.executable, str(HERE / "serve_scenario.py"), str(tmp_path)], capture_output=True,
                         text=True, timeout=300, cwd=HERE.parent)
    assert out.returncode == 0, out.stderr[-3000:]
    seen = json.loads((tmp_path / "seen.json").read_text())
    assert seen["openai"]["content"] and seen["openai"]["content"].isdigit()
    usage = seen["openai"]["usage"]
    assert usage["prompt_tokens"] == 30 and usage["completion_tokens"] == 18   # 3 calls of 10 in / 6 out
    assert seen["openai"]["calls"] == "3" and float(seen["openai"]["cost"]) > 0
    assert seen["openai_stream"]["content"].isdigit() and seen["openai_stream"]["usage"]["total_tokens"] == 48
    assert seen["models"] == ["arith-vote"] and seen["wrong_model"] == 404
    assert seen["litellm"]["content"].isdigit() and seen["litellm"]["total_tokens"] == 48
    assert seen["litellm_stream"].isdigit()
    assert seen["burst"] == [200, 429] and seen["retry_after"] == ["1"]
    assert seen["healthz"]["status"] == "ok" and seen["healthz"]["served"] >= 4
    assert seen["heavy_modules"] == []
