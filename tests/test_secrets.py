"""A run made with a sentinel API key: the key appears in no output (specs, cache, study, logs)."""

import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

SENTINEL = "sk-SENTINEL-7f3a9c1e5b2d4f60"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def fault_server():
    import asyncio

    from aiohttp import web

    from archsearch.testing.fault_server import make_app, schedule

    plan = ["401_echo"] + schedule(seed=2, n=5000, failure_rate=0.15, kinds=("429", "500", "malformed"))
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(make_app(plan))
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    port = site._server.sockets[0].getsockname()[1]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield port
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)


def test_sentinel_key_never_leaks(fault_server, tmp_path):
    port = fault_server
    exp = tmp_path / "exp"
    exp.mkdir()
    (exp / "data.jsonl").write_text((ROOT / "tests/fixtures/toy/data.jsonl").read_text())
    (exp / "task.yaml").write_text("name: t\ndata: data.jsonl\ncache: calls.sqlite\ntemplate: '{question}'\n"
                                   "extractor: last_number\nscorer: numeric\n")
    (exp / "space.yaml").write_text(textwrap.dedent(f"""
        name: s
        models:
          m: {{id: openai/fault, transport: http, params: {{api_base: "http://127.0.0.1:{port}/v1"}},
              price: {{input_per_mtok: 1, output_per_mtok: 1}}}}
        layers:
          - {{kind: generate, params: {{model: m, n: {{int: [1, 3]}}, temperature: 0.7, max_tokens: 32}}}}
          - {{kind: vote, optional: true}}
    """))
    (exp / "experiment.yaml").write_text(f"task: task.yaml\nspace: space.yaml\nobjective: {ROOT / 'objectives/default.yaml'}\ntrials: 4\n")
    env = {**os.environ, "OPENAI_API_KEY": SENTINEL}
    out = subprocess.run([sys.executable, "-m", "archsearch.cli", "optimize", str(exp), "--concurrency", "8"],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert (exp / "out" / "pipeline.yaml").exists()
    assert "HTTP 401" in (exp / "out" / "report.json").read_text()  # the echoing failure was recorded...
    leaks = [str(p) for p in exp.rglob("*") if p.is_file() and SENTINEL.encode() in p.read_bytes()]
    assert leaks == []  # ...but the key it echoed was not, anywhere
    assert SENTINEL not in out.stdout and SENTINEL not in out.stderr
