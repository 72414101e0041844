"""Runtime overhead against a fixed-latency OpenAI-compatible endpoint on loopback.

  A. one layer of 8 calls per question: wall time per question / slowest call (target <= 1.15)
  B. 1,000 questions x 10 calls with 64 calls in flight on a 50 ms endpoint vs the ideal 7.8 s (target <= 1.3x)
  C. like for like with Archon's own runtime (archon-ai, model_type OpenAI_API) on the same endpoint:
     (i) the per-question latency of one layer of 8 samples, one question at a time, both sides;
     (ii) 1,000 questions x 10 samples with 64 questions in flight on BOTH sides (Archon driven
     from a pool of 64 threads; archsearch with 64 questions in flight and at most 64 calls in
     flight). Figures of different concurrency are not compared.

    python benchmarks/runtime_overhead.py [--archon-python /path/to/venv-with-archon-ai/bin/python]

Archon is installed in a separate venv (pip install archon-ai) so its pins do not touch ours.
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
import textwrap
import time
from pathlib import Path

from archsearch.llm import CallCache, LLMClient
from archsearch.pipeline import Pipeline
from archsearch.spec import loads_spec

LATENCY = 0.05


def spec(n: int, transport: str, port: int):
    return loads_spec(textwrap.dedent(f"""
        schema_version: 1
        name: overhead-{transport}-{n}
        task: {{template: "{{question}}", extractor: {{kind: last_number}}}}
        models:
          m: {{id: openai/fixed, transport: {transport}, params: {{api_base: "http://127.0.0.1:{port}/v1"}},
              price: {{input_per_mtok: 0, output_per_mtok: 0}}}}
        layers: [{{kind: generate, params: {{model: m, n: {n}, temperature: 0.7, max_tokens: 16}}}}]
    """))


def layer_of_8(transport: str, port: int, questions: int = 20) -> dict:
    pipe = Pipeline(spec(8, transport, port), LLMClient(max_concurrency=64))

    async def go():
        ratios = []
        for i in range(questions):
            r = await pipe.acall(f"question {i} {time.time()}")
            slowest = max(c.latency_s for c in r.candidates)
            ratios.append(r.trace.seconds / slowest)
        return ratios

    ratios = asyncio.run(go())
    return {"transport": transport, "median_wall_over_slowest": statistics.median(ratios),
            "max_wall_over_slowest": max(ratios)}


def throughput(transport: str, port: int, cache_url: str | None, questions: int = 1000, calls: int = 10,
               questions_in_flight: int | None = None) -> dict:
    """All questions at once (``questions_in_flight`` None) or that many at a time; at most 64 calls in flight."""
    client = LLMClient(cache=CallCache(cache_url) if cache_url else None, max_concurrency=64)
    pipe = Pipeline(spec(calls, transport, port), client)
    start = time.perf_counter()
    results = pipe.batch([f"q{i} {time.time()}" for i in range(questions)], concurrency=questions_in_flight or questions)
    wall = time.perf_counter() - start
    ideal = questions * calls / 64 * LATENCY
    assert sum(r.trace.calls for r in results) == questions * calls
    return {"transport": transport, "cache": bool(cache_url), "questions_in_flight": questions_in_flight or questions,
            "wall_s": wall, "ideal_s": ideal, "ratio": wall / ideal}


ARCHON_SCRIPT = """
import json, os, sys, time
from concurrent.futures import ThreadPoolExecutor
from archon.completions import Archon
n, questions, workers = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
cfg = {"name": "bench", "layers": [[{"type": "generator", "model": "fixed", "model_type": "OpenAI_API",
        "top_k": 1, "temperature": 0.7, "max_tokens": 16, "samples": n}]]}
archon = Archon(cfg)

def one(i):
    t = time.perf_counter()
    archon.generate([{"role": "user", "content": f"question {i}"}])
    return time.perf_counter() - t

start = time.perf_counter()
with ThreadPoolExecutor(max_workers=workers) as pool:
    times = list(pool.map(one, range(questions)))
print(json.dumps({"per_question": times, "wall": time.perf_counter() - start}))
"""


def archon(python: str, port: int, n: int, questions: int, workers: int) -> dict:
    env = {**os.environ, "OPENAI_BASE_URL": f"http://127.0.0.1:{port}/v1", "OPENAI_API_KEY": "unused"}
    out = subprocess.run([python, "-c", ARCHON_SCRIPT, str(n), str(questions), str(workers)], capture_output=True,
                         text=True, env=env, timeout=3600, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def ours_one_at_a_time(port: int, n: int, questions: int) -> list[float]:
    pipe = Pipeline(spec(n, "http", port), LLMClient(max_concurrency=64))

    async def go():
        out = []
        for i in range(questions):
            t = time.perf_counter()
            await pipe.acall(f"question {i} {time.time()}")
            out.append(time.perf_counter() - t)
        await pipe.client.release_loop()
        return out

    return asyncio.run(go())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=8011)
    parser.add_argument("--archon-python", help="python of a venv with archon-ai installed")
    args = parser.parse_args()
    server = subprocess.Popen([sys.executable, "-m", "archsearch.testing.fixed_latency_server",
                               "--port", str(args.port), "--latency", str(LATENCY)])
    try:
        time.sleep(2.0)
        report: dict = {"endpoint_latency_s": LATENCY, "cores": os.cpu_count()}
        report["A_layer_of_8"] = [layer_of_8("http", args.port), layer_of_8("litellm", args.port)]
        with tempfile.TemporaryDirectory() as tmp:
            report["B_1000x10_at_64"] = [
                throughput("http", args.port, None),
                throughput("http", args.port, f"sqlite:///{Path(tmp) / 'cache.sqlite'}"),
                throughput("litellm", args.port, None, questions=200),
            ]
        if args.archon_python:
            layer = archon(args.archon_python, args.port, 8, 20, 1)["per_question"]
            ours_layer = ours_one_at_a_time(args.port, 8, 20)
            bulk = archon(args.archon_python, args.port, 10, 1000, 64)
            ours = throughput("http", args.port, None, questions=1000, calls=10, questions_in_flight=64)
            report["C_archon_like_for_like"] = {
                "one_layer_of_8_per_question_s": {"archon": statistics.median(layer),
                                                  "archsearch": statistics.median(ours_layer)},
                "1000x10_with_64_questions_in_flight_wall_s": {"archon": bulk["wall"], "archsearch": ours["wall_s"],
                                                               "ideal": ours["ideal_s"]},
                "archon_over_archsearch_throughput": bulk["wall"] / ours["wall_s"],
                "archon_over_archsearch_layer_latency": statistics.median(layer) / statistics.median(ours_layer),
            }
        print(json.dumps(report, indent=2))
    finally:
        server.terminate()


if __name__ == "__main__":
    main()
