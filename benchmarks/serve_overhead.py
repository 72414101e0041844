"""What `archsearch serve` adds per request on top of the pipeline's own time.

A loopback OpenAI-compatible model answers after 50 ms (its own process); `archsearch serve` runs
a one-call pipeline against it (its own process); a client sends ``--requests`` requests at once,
``--rounds`` times. Per request, overhead = client-observed latency - the pipeline's own seconds
(the ``x-archsearch-pipeline-seconds`` header). Prints median and p95. Beside it, like for like:
the same client sends the same bursts straight to the model endpoint, and the difference of the
median latencies (through serve minus direct) is what putting serve in the path costs end to end.

    python benchmarks/serve_overhead.py [--requests 200] [--rounds 5] [--latency 0.05]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


async def burst(url: str, n: int, model: str = "bench") -> list[tuple[float, float]]:
    import aiohttp

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        async def one(i: int) -> tuple[float, float]:
            body = {"model": model, "messages": [{"role": "user", "content": f"What is {i} + 1?"}]}
            start = time.perf_counter()
            async with session.post(url, json=body) as r:
                await r.read()
                assert r.status == 200, r.status
                own = float(r.headers.get("x-archsearch-pipeline-seconds", "nan"))
            return time.perf_counter() - start, own

        return await asyncio.gather(*(one(i) for i in range(n)))


from archsearch.testing.net import free_port, wait_for_port  # noqa: E402


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--latency", type=float, default=0.05)
    args = parser.parse_args()
    model_port, port = free_port(), free_port()
    folder = Path(tempfile.mkdtemp())
    spec = folder / "spec.yaml"
    spec.write_text(f"""schema_version: 1
name: bench
task: {{template: "{{question}}", extractor: {{kind: last_number}}}}
models:
  m: {{id: openai/fixed, transport: http, params: {{api_base: "http://127.0.0.1:{model_port}/v1"}}}}
layers:
  - {{kind: generate, params: {{model: m, n: 1, temperature: 0.0}}}}
""")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    procs = [subprocess.Popen([sys.executable, "-m", "archsearch.testing.fixed_latency_server", "--port", str(model_port),
                               "--latency", str(args.latency)], env=env),
             subprocess.Popen([sys.executable, "-m", "archsearch.cli", "serve", str(spec), "--port", str(port),
                               "--max-concurrent", str(args.requests * 2), "--concurrency", str(args.requests * 2)],
                              env=env, stdout=subprocess.DEVNULL)]
    try:
        wait_for_port(model_port)
        wait_for_port(port)
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        asyncio.run(burst(url, 20))  # warm-up: imports, connection pools
        overhead, total, own = [], [], []
        cpu_before = cpu_seconds(procs[1].pid)
        for _ in range(args.rounds):
            for client_s, pipeline_s in asyncio.run(burst(url, args.requests)):
                overhead.append(client_s - pipeline_s)
                total.append(client_s)
                own.append(pipeline_s)
        serve_cpu = cpu_seconds(procs[1].pid) - cpu_before
        direct_url = f"http://127.0.0.1:{model_port}/v1/chat/completions"
        asyncio.run(burst(direct_url, 20, "fixed"))
        direct = [c for _ in range(args.rounds) for c, _ in asyncio.run(burst(direct_url, args.requests, "fixed"))]
        q = statistics.quantiles(overhead, n=20)
        result = {"requests": len(overhead), "concurrent": args.requests, "model_latency_s": args.latency,
                  "overhead_ms_median": 1000 * statistics.median(overhead), "overhead_ms_p95": 1000 * q[18],
                  "client_ms_median": 1000 * statistics.median(total), "pipeline_ms_median": 1000 * statistics.median(own),
                  "serve_cpu_ms_per_request": 1000 * serve_cpu / len(overhead),
                  "direct_client_ms_median": 1000 * statistics.median(direct),
                  "serve_minus_direct_ms_median": 1000 * (statistics.median(total) - statistics.median(direct))}
        print(json.dumps(result, indent=2))
    finally:
        for p in procs:
            p.terminate()
            p.wait(10)


if __name__ == "__main__":
    main()
