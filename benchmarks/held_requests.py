"""A provider that holds some requests, and one with a heavy latency tail: hung requests must cost
seconds, not minutes, with the defaults (no ``timeout_s`` set anywhere).

1. The fault server answers 80% of requests and fails the rest evenly: 429, 500, 503, malformed
   JSON, or a hold (the request hangs): 4% of requests held. The same 20-trial search runs twice on
   fresh caches, holds of 3 s and of 120 s; the ratio of their wall times is the figure.
2. A server with no faults whose latency is log-normal (median 50 ms, sigma 1: a heavy tail):
   300 questions of "5 samples -> vote", with hedging and without; per-question p50 / p99 latency,
   requests the server saw (paid calls, hedges included) and hedges sent.

    python benchmarks/held_requests.py [--timeout S] [--trials 20]      (--timeout: set timeout_s, as before)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from archsearch.testing.net import free_port, wait_for_port  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SERVER = """
import asyncio, sys
from aiohttp import web
from archsearch.testing.fault_server import make_app, schedule
plan = schedule(seed=7, n=200_000, failure_rate=0.2, kinds=("hang", "429", "500", "503", "malformed"))
web.run_app(make_app(plan, hang_s=float(sys.argv[2]), retry_after_s=0.05), host="127.0.0.1", port=int(sys.argv[1]),
            print=None, access_log=None)
"""


TAIL_SERVER = """
import asyncio, json, random, sys, time
from aiohttp import web
rng, count = random.Random(int(sys.argv[2])), {"n": 0}
async def chat(request):
    await request.json()
    count["n"] += 1
    await asyncio.sleep(min(30.0, 0.05 * rng.lognormvariate(0.0, 1.0)))
    body = {"id": "x", "object": "chat.completion", "created": int(time.time()), "model": "tail",
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant",
                        "content": f"The answer is {count['n'] % 3}."}}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9}}
    return web.json_response(body)
async def stats(request):
    return web.json_response(count)
app = web.Application()
app.router.add_post("/v1/chat/completions", chat)
app.router.add_get("/stats", stats)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""


def tail(hedging: bool, questions: int = 300, seed: int = 1) -> dict:
    import urllib.request

    from archsearch.llm import LLMClient
    from archsearch.pipeline import Pipeline
    from archsearch.spec import loads_spec
    from archsearch.stats import percentile

    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", TAIL_SERVER, str(port), str(seed)])
    try:
        wait_for_port(port)
        spec = loads_spec(textwrap.dedent(f"""
            schema_version: 1
            name: tail
            task: {{template: "{{question}}", extractor: {{kind: last_number}}}}
            models: {{m: {{id: openai/tail, transport: http, params: {{api_base: "http://127.0.0.1:{port}/v1"}}}}}}
            layers: [{{kind: generate, params: {{model: m, n: 5, temperature: 0.7, max_tokens: 16}}}}, {{kind: vote}}]
        """))
        client = LLMClient(max_concurrency=32, hedging=hedging)
        pipe = Pipeline(spec, client)
        results = pipe.batch([f"What is {i} + 1?" for i in range(questions)], concurrency=8)
        seen = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/stats").read())["n"]
        seconds = [r.trace.seconds for r in results]
        return {"hedging": hedging, "p50_s": round(percentile(seconds, 50), 3), "p99_s": round(percentile(seconds, 99), 3),
                "answered_calls": client.stats.calls, "server_requests": seen,
                "hedges": sum(client.stats.hedges.values()), "hedge_wins": sum(client.stats.hedge_wins.values())}
    finally:
        server.kill()
        server.wait(10)


def run(hold: float, timeout: float | None, trials: int) -> dict:
    port, folder = free_port(), Path(tempfile.mkdtemp())
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(port), str(hold)])
    try:
        wait_for_port(port)
        (folder / "data.jsonl").write_text((ROOT / "tests/fixtures/toy/data.jsonl").read_text())
        (folder / "task.yaml").write_text("name: t\ndata: data.jsonl\ncache: calls.sqlite\ntemplate: '{question}'\n"
                                          "extractor: last_number\nscorer: numeric\n")
        (folder / "space.yaml").write_text(textwrap.dedent(f"""
            name: held
            models:
              m: {{id: openai/fault, transport: http,{f" timeout_s: {timeout}," if timeout else ""}
                  params: {{api_base: "http://127.0.0.1:{port}/v1"}}, price: {{input_per_mtok: 1, output_per_mtok: 1}}}}
            layers:
              - {{kind: generate, params: {{model: m, n: {{int: [1, 8]}}, temperature: 0.7, max_tokens: 32}}}}
              - {{kind: vote, optional: true}}
        """))
        (folder / "experiment.yaml").write_text(f"space: space.yaml\nobjective: {ROOT / 'objectives/default.yaml'}\n"
                                                f"trials: {trials}\n")
        start = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "archsearch.cli", "optimize", str(folder), "--concurrency", "32"],
                             capture_output=True, text=True, env={**os.environ, "OPENAI_API_KEY": "x"})
        seconds = time.perf_counter() - start
        report = json.loads((folder / "out" / "report.json").read_text()) if out.returncode == 0 else {}
        client = report.get("client", {})
        return {"hold_s": hold, "timeout_s": timeout, "seconds": round(seconds, 1), "returncode": out.returncode,
                "errors": client.get("errors"), "failed_calls": client.get("failures"), "timeouts": client.get("timeouts"),
                "hedges": client.get("hedges"), "hedge_wins": client.get("hedge_wins"), "usd": client.get("usd"),
                "hedge_usd": client.get("hedge_usd"), "budget_overruns": client.get("budget_overruns")}
    finally:
        server.kill()  # held requests would keep a graceful shutdown waiting
        server.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--timeout", type=float, default=None)
    parser.add_argument("--trials", type=int, default=20)
    args = parser.parse_args()
    short = run(3.0, args.timeout, args.trials)
    print(json.dumps({"short_holds": short}), flush=True)
    long = run(120.0, args.timeout, args.trials)
    held = {"short_holds": short, "long_holds": long, "ratio": round(long["seconds"] / short["seconds"], 2)}
    print(json.dumps(held), flush=True)
    tails = {"without_hedging": tail(False), "with_hedging": tail(True)}
    out = {**held, **tails}
    (ROOT / "benchmarks" / "results" / "held_requests.json").write_text(json.dumps(out, indent=1))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
