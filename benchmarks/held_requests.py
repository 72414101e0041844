"""A provider that holds some requests: does the search still finish?

The fault server answers 80% of requests, and fails the rest evenly: 429, 500, 503, malformed
JSON, or a hold (the request hangs for ``--hold`` seconds): 4% of requests held. The same 20-trial
search runs twice on fresh caches, once with 3-second holds and once with 120-second holds; the
model entry sets ``timeout_s`` (a held request then counts as a retryable failure).

    python benchmarks/held_requests.py [--timeout 5] [--trials 20]
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


def run(hold: float, timeout: float, trials: int) -> dict:
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
              m: {{id: openai/fault, transport: http, timeout_s: {timeout},
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
        return {"hold_s": hold, "timeout_s": timeout, "seconds": round(seconds, 1), "returncode": out.returncode,
                "errors": report.get("client", {}).get("errors"), "failed_calls": report.get("client", {}).get("failures")}
    finally:
        server.kill()  # held requests would keep a graceful shutdown waiting
        server.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--timeout", type=float, default=5.0)
    parser.add_argument("--trials", type=int, default=20)
    args = parser.parse_args()
    short = run(3.0, args.timeout, args.trials)
    print(json.dumps({"short_holds": short}), flush=True)
    long = run(120.0, args.timeout, args.trials)
    print(json.dumps({"short_holds": short, "long_holds": long,
                      "ratio": round(long["seconds"] / short["seconds"], 2)}, indent=2))


if __name__ == "__main__":
    main()
