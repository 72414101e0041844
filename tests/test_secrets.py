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


def test_a_literal_key_in_a_space_is_refused_and_nothing_is_written(fault_server, tmp_path):
    exp = http_experiment(tmp_path / "exp", fault_server, trials=2)
    space = (exp / "space.yaml").read_text()
    (exp / "space.yaml").write_text(space.replace('params: {api_base:', f'params: {{api_key: "{SENTINEL}", api_base:'))
    out = subprocess.run([sys.executable, "-m", "archsearch.cli", "optimize", str(exp)], capture_output=True,
                         text=True, cwd=tmp_path, timeout=120)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1
    assert "models.m.params" in out.stderr and "os.environ/" in out.stderr and SENTINEL not in out.stderr
    assert not (exp / "out").exists() and not (exp / "calls.sqlite").exists()


def test_a_referenced_key_reaches_no_file_row_header_or_log_through_optimize_and_serve(fault_server, tmp_path):
    """The key lives in PROVIDER_AUTH (a name the generic redaction would not catch), referenced as
    os.environ/PROVIDER_AUTH; the server echoes it back in a 401 on its first request."""
    import json
    import urllib.request

    from archsearch.testing.net import free_port, wait_for_port

    exp = http_experiment(tmp_path / "exp", fault_server, trials=4)
    space = (exp / "space.yaml").read_text()
    (exp / "space.yaml").write_text(space.replace("params: {api_base:", "params: {api_key: os.environ/PROVIDER_AUTH, api_base:"))
    env = {**os.environ, "PROVIDER_AUTH": SENTINEL}
    env.pop("OPENAI_API_KEY", None)
    out = subprocess.run([sys.executable, "-m", "archsearch.cli", "optimize", str(exp), "--concurrency", "8"],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    report = (exp / "out" / "report.json").read_text()
    assert "HTTP 401" in report and "os.environ/PROVIDER_AUTH" in report   # the echo was recorded, as a reference
    spec = (exp / "out" / "pipeline.yaml").read_text()
    assert "api_key: os.environ/PROVIDER_AUTH" in spec
    port = free_port()
    log = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen([sys.executable, "-m", "archsearch.cli", "serve", str(exp / "out" / "pipeline.yaml"),
                               "--port", str(port), "--cache", f"sqlite:///{exp / 'calls.sqlite'}"],
                              env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        wait_for_port(port)
        name = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models").read())["data"][0]["id"]
        request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/chat/completions", method="POST",
                                         data=json.dumps({"model": name, "messages": [
                                             {"role": "user", "content": "What is 9 + 9?"}]}).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request) as r:
            body, headers = r.read(), str(r.headers)
    finally:
        server.terminate()
        server.wait(20)
        log.close()
    assert SENTINEL not in body.decode() and SENTINEL not in headers
    leaks = [str(p) for p in tmp_path.rglob("*") if p.is_file() and SENTINEL.encode() in p.read_bytes()]
    assert leaks == []   # spec, cache rows and keys, study, report, serve log
    assert SENTINEL not in out.stdout and SENTINEL not in out.stderr
