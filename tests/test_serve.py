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


def test_workers_share_one_port_answer_and_stop_together(tmp_path, latency_server):
    import json as _json
    import signal
    import time
    import urllib.request

    from archsearch.testing.net import free_port, wait_for_port

    spec = tmp_path / "spec.yaml"
    spec.write_text(f"""schema_version: 1
name: w
task: {{template: "{{question}}", extractor: {{kind: last_number}}}}
models:
  m: {{id: openai/fixed, transport: http, params: {{api_base: "http://127.0.0.1:{latency_server}/v1"}}}}
layers:
  - {{kind: generate, params: {{model: m, n: 1}}}}
""")
    port = free_port()
    log = tmp_path / "stderr.txt"
    server = subprocess.Popen([sys.executable, "-X", "importtime", "-m", "archsearch.cli", "serve", str(spec),
                               "--port", str(port), "--workers", "2"], stdout=subprocess.DEVNULL, stderr=log.open("w"))
    try:
        wait_for_port(port)
        workers = {_json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz"))["worker"]
                   for _ in range(40)}  # a new connection each time: the kernel spreads them
        assert len(workers) == 2 and server.pid not in workers
        request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/chat/completions", data=_json.dumps(
            {"model": "w", "messages": [{"role": "user", "content": "What is 1 + 1?"}]}).encode())
        reply = _json.load(urllib.request.urlopen(request))
        assert reply["choices"][0]["message"]["content"].isdigit()
        busy = subprocess.run([sys.executable, "-m", "archsearch.cli", "serve", str(spec), "--port",
                               str(latency_server), "--workers", "2"], capture_output=True, text=True, timeout=60)
        assert busy.returncode == 2 and busy.stderr.count("\n") == 1 and "cannot listen" in busy.stderr
        server.send_signal(signal.SIGTERM)
        assert server.wait(30) == 0
        imported = {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in log.read_text().splitlines()
                    if line.startswith("import time:")}  # every import of the parent and its workers
        assert "aiohttp" in imported and not imported & {"optuna", "jax", "numpyro"}
        time.sleep(0.5)
        for pid in workers:
            assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
    finally:
        server.kill()


def test_a_held_upstream_request_does_not_hold_a_client(tmp_path):
    """Serve's calls are watched like a search's: with one upstream request in six hanging for
    60 s, no client waits more than a few seconds (a held call is hedged or timed out and retried)."""
    import json as _json
    import time
    import urllib.request

    from archsearch.testing.fault_server import make_app, schedule
    from archsearch.testing.net import free_port, serving, wait_for_port

    plan = schedule(seed=3, n=1000, failure_rate=1 / 6, kinds=("hang",))   # the first hang is the 6th request
    with serving(make_app(plan, hang_s=60.0)) as upstream:
        spec = tmp_path / "spec.yaml"
        spec.write_text(f"""schema_version: 1
name: h
task: {{template: "{{question}}", extractor: {{kind: last_number}}}}
models:
  m: {{id: openai/fault, transport: http, params: {{api_base: "http://127.0.0.1:{upstream}/v1"}}}}
layers:
  - {{kind: generate, params: {{model: m, n: 1}}}}
""")
        port = free_port()
        server = subprocess.Popen([sys.executable, "-m", "archsearch.cli", "serve", str(spec), "--port", str(port)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for_port(port)
            waits = []
            for i in range(30):
                request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/chat/completions", data=_json.dumps(
                    {"model": "h", "messages": [{"role": "user", "content": f"What is {i} + 1?"}]}).encode())
                start = time.perf_counter()
                reply = _json.load(urllib.request.urlopen(request, timeout=120))
                waits.append(time.perf_counter() - start)
                assert reply["choices"][0]["message"]["content"]
        finally:
            server.terminate()
            server.wait(30)
    held = sum(1 for outcome in plan[:40] if outcome == "hang")
    assert held >= 5 and max(waits) < 10, waits   # the first answers teach the client what usual is
