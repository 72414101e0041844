"""A run made with a sentinel API key: the key appears in no output (specs, cache, study, logs)."""

import os
import subprocess
import sys
from pathlib import Path

from conftest import http_experiment

SENTINEL = "sk-SENTINEL-7f3a9c1e5b2d4f60"
ROOT = Path(__file__).resolve().parent.parent


def test_sentinel_key_never_leaks(fault_server, tmp_path):
    exp = http_experiment(tmp_path / "exp", fault_server, trials=4)
    env = {**os.environ, "OPENAI_API_KEY": SENTINEL}
    out = subprocess.run([sys.executable, "-m", "archsearch.cli", "optimize", str(exp), "--concurrency", "8"],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert (exp / "out" / "pipeline.yaml").exists()
    assert "HTTP 401" in (exp / "out" / "report.json").read_text()  # the echoing failure was recorded...
    leaks = [str(p) for p in exp.rglob("*") if p.is_file() and SENTINEL.encode() in p.read_bytes()]
    assert leaks == []  # ...but the key it echoed was not, anywhere
    assert SENTINEL not in out.stdout and SENTINEL not in out.stderr
