"""What `archsearch serve` adds per request on top of the pipeline's own time.

A loopback OpenAI-compatible model answers after 50 ms (its own process); `archsearch serve` runs
a one-call pipeline against it (its own process); a load generator keeps ``--requests`` requests in
flight. Per request, overhead = client-observed latency - the pipeline's own seconds (the
``x-archsearch-pipeline-seconds`` header). Like for like beside it: the same load generator sends
the same load straight to the model, and the difference of the median latencies (through serve
minus direct) is what putting serve in the path costs end to end.

Load shapes (``--load``):
  steady  ``--requests`` keep-alive connections, each sending its next question as soon as the last
          is answered, for ``--seconds`` (the first second is warm-up): N concurrent requests as
          wrk, hey or ab mean it.
  burst   the N connections send one question each at the same instant, ``--rounds`` times.
Load generators (``--client``): ``raw``, a bare asyncio keep-alive HTTP/1.1 client (tens of
microseconds per request, so it leaves the shared cores to what is measured), or ``aiohttp``, a
new aiohttp session per burst (what the first version of this benchmark used). ``--model raw``
answers from a bare asyncio protocol too. ``--pin`` puts serve on core 1 and the load generator
and the model on core 0, as when the clients and the model are other machines.

    python benchmarks/serve_overhead.py [--load steady] [--requests 200] [--seconds 10] [--pin]
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

from archsearch.testing.fixed_latency_server import take_message
from archsearch.testing.net import free_port, wait_for_port

SECONDS_HEADER = b"x-archsearch-pipeline-seconds"


class RawConnection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection; ``post`` sends a request and waits for its response."""

    def __init__(self) -> None:
        self.buffer, self.waiter = b"", None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if (message := take_message(self.buffer)) is not None:
            start, headers, _, self.buffer = message
            self.waiter.set_result((int(start.split()[1]), headers))

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("the server closed the connection"))

    async def post(self, request: bytes) -> tuple[int, dict[bytes, bytes]]:
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return await self.waiter


def request_bytes(port: int, model: str, i: int) -> bytes:
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": f"What is {i} + 1?"}]}).encode()
    return (b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (port, len(body), body))


async def raw_load(port: int, model: str, n: int, load: str, seconds: float,
                   rounds: int) -> list[tuple[float, float, bool]]:
    """(client seconds, pipeline seconds, after the warm-up?) per request answered."""
    loop = asyncio.get_running_loop()
    conns = [(await loop.create_connection(RawConnection, "127.0.0.1", port))[1] for _ in range(n)]
    counter, out = iter(range(10**9)), []

    async def one(conn: RawConnection, keep: bool) -> None:
        request = request_bytes(port, model, next(counter))
        start = time.perf_counter()
        status, headers = await conn.post(request)
        assert status == 200, status
        out.append((time.perf_counter() - start, float(headers.get(SECONDS_HEADER, b"nan")), keep))

    if load == "burst":
        await asyncio.gather(*(one(c, False) for c in conns))  # warm-up
        for _ in range(rounds):
            await asyncio.gather(*(one(c, True) for c in conns))
            await asyncio.sleep(0.2)
    else:
        warm_until, stop_at = time.perf_counter() + 1.0, time.perf_counter() + 1.0 + seconds

        async def keep_asking(conn: RawConnection) -> None:
            while (now := time.perf_counter()) < stop_at:
                await one(conn, now >= warm_until)

        await asyncio.gather(*(keep_asking(c) for c in conns))
    for c in conns:
        c.transport.close()
    return out


async def aiohttp_bursts(port: int, model: str, n: int, rounds: int) -> list[tuple[float, float, bool]]:
    import aiohttp

    url, out = f"http://127.0.0.1:{port}/v1/chat/completions", []
    for r in range(rounds + 1):
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            async def one(i: int, keep: bool) -> tuple[float, float, bool]:
                body = {"model": model, "messages": [{"role": "user", "content": f"What is {i} + 1?"}]}
                start = time.perf_counter()
                async with session.post(url, json=body) as resp:
                    await resp.read()
                    assert resp.status == 200, resp.status
                    own = float(resp.headers.get("x-archsearch-pipeline-seconds", "nan"))
                return time.perf_counter() - start, own, keep

            out += await asyncio.gather(*(one(r * n + i, r > 0) for i in range(n)))  # round 0 warms up
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process and its children (serve's workers) have used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK") + sum(cpu_seconds(int(c)) for c in children)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200, help="requests in flight")
    parser.add_argument("--load", choices=("steady", "burst"), default="steady")
    parser.add_argument("--seconds", type=float, default=10.0, help="steady load: measured seconds")
    parser.add_argument("--rounds", type=int, default=10, help="burst load: bursts")
    parser.add_argument("--client", choices=("raw", "aiohttp"), default="raw")
    parser.add_argument("--model", choices=("raw", "aiohttp"), default="raw")
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--pin", action="store_true", help="serve on core 1; load generator and model on core 0")
    parser.add_argument("--workers", type=int, default=1, help="archsearch serve --workers")
    parser.add_argument("--out", help="append the result as one JSON line to this file")
    args = parser.parse_args()
    if args.client == "aiohttp" and args.load != "burst":
        parser.error("--client aiohttp runs bursts only (--load burst)")
    model_port, port = free_port(), free_port()
    spec = Path(tempfile.mkdtemp()) / "spec.yaml"
    spec.write_text(f"""schema_version: 1
name: bench
task: {{template: "{{question}}", extractor: {{kind: last_number}}}}
models:
  m: {{id: openai/fixed, transport: http, params: {{api_base: "http://127.0.0.1:{model_port}/v1"}}}}
layers:
  - {{kind: generate, params: {{model: m, n: 1, temperature: 0.0}}}}
""")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    pin = (lambda core: ["taskset", "-c", str(core)]) if args.pin else (lambda core: [])
    if args.pin:
        os.sched_setaffinity(0, {0})
    procs = [subprocess.Popen([*pin(0), sys.executable, "-m", "archsearch.testing.fixed_latency_server",
                               "--port", str(model_port), "--latency", str(args.latency),
                               *(["--raw"] if args.model == "raw" else [])], env=env),
             subprocess.Popen([*pin(1), sys.executable, "-m", "archsearch.cli", "serve", str(spec), "--port", str(port),
                               "--max-concurrent", str(args.requests * 2), "--concurrency", str(args.requests * 2),
                               "--workers", str(args.workers)],
                              env=env, stdout=subprocess.DEVNULL)]

    def drive(target_port: int, model: str) -> list[tuple[float, float, bool]]:
        if args.client == "aiohttp":
            return asyncio.run(aiohttp_bursts(target_port, model, args.requests, args.rounds))
        return asyncio.run(raw_load(target_port, model, args.requests, args.load, args.seconds, args.rounds))

    try:
        wait_for_port(model_port)
        wait_for_port(port)
        cpu_before = [cpu_seconds(procs[1].pid), cpu_seconds(procs[0].pid), time.process_time()]
        answered = drive(port, "bench")
        serve_cpu, model_cpu, client_cpu = (after - before for after, before in zip(
            [cpu_seconds(procs[1].pid), cpu_seconds(procs[0].pid), time.process_time()], cpu_before))
        direct = [c for c, _, kept in drive(model_port, "fixed") if kept]
    finally:
        for p in procs:
            p.terminate()
            p.wait(10)
    served = [(c, own) for c, own, kept in answered if kept]
    overhead = [c - own for c, own in served]
    q = statistics.quantiles(overhead, n=20)
    total = [c for c, _ in served]
    result = {"load": args.load, "client": args.client, "model": args.model, "pinned": args.pin, "workers": args.workers,
              "concurrent": args.requests, "model_latency_s": args.latency, "requests": len(served),
              "requests_per_s": len(served) / args.seconds if args.load == "steady" else None,
              "overhead_ms_median": 1000 * statistics.median(overhead), "overhead_ms_p95": 1000 * q[18],
              "client_ms_median": 1000 * statistics.median(total),
              "pipeline_ms_median": 1000 * statistics.median(own for _, own in served),
              "serve_cpu_ms_per_request": 1000 * serve_cpu / len(answered),
              "model_cpu_ms_per_request": 1000 * model_cpu / len(answered),
              "client_cpu_ms_per_request": 1000 * client_cpu / len(answered),
              "direct_client_ms_median": 1000 * statistics.median(direct),
              "serve_minus_direct_ms_median": 1000 * (statistics.median(total) - statistics.median(direct))}
    print(json.dumps(result, indent=2))
    if args.out:
        with open(args.out, "a") as fh:
            fh.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
