"""Score every recorded HumanEval answer with this checkout's hidden-test scorer and sandbox.

For a change to the scorer or the sandbox: run it on the checkout before and after, then compare.
Every cached call whose prompt is a HumanEval problem counts (samples, greedy answers, fusions).
It also times the sandbox on a trivial program.

    python benchmarks/rescore_pool.py --out before.json            # on the old checkout
    python benchmarks/rescore_pool.py --out after.json --compare before.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path

from sqlalchemy import text

from archsearch.llm.cache import CallCache
from archsearch.sandbox import run_program
from archsearch.tasks import Task

ROOT = Path(__file__).resolve().parent.parent


async def verdicts(task: Task, concurrency: int) -> dict[str, float]:
    by_prompt = {r.text: r for r in task.records}
    with CallCache(task.cache_url).engine.connect() as conn:
        rows = conn.execute(text("select key, request, response from archsearch_llm_calls")).fetchall()
    gate, memo, out = asyncio.Semaphore(concurrency), {}, {}

    async def one(key: str, request: str, response: str) -> None:
        record = by_prompt.get(json.loads(request)["messages"][-1]["content"])
        if record is None:
            return
        answer = task.extractor(json.loads(response)["text"])
        async with gate:
            out[key] = await task.scorer.score(answer, record, None, memo) if answer else 0.0

    await asyncio.gather(*(one(*row) for row in rows))
    return out


async def sandbox_ms(runs: int = 100) -> float:
    gate = asyncio.Semaphore(2)

    async def one(i: int) -> bool:
        async with gate:
            run = await run_program(f"def add(a, b):\n    return a + b\nX = {i}\n",
                                    ["assert add(1, 2) == 3", "assert add(0, 0) == 0"], ["add(1, 2)", "add(0, 0)"])
            return run.ok

    start = time.perf_counter()
    assert all(await asyncio.gather(*(one(i) for i in range(runs))))
    return 1000 * (time.perf_counter() - start) / runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default=str(ROOT / "experiments/humaneval-local/task.yaml"))
    parser.add_argument("--out", required=True, help="verdicts by cache key (JSON)")
    parser.add_argument("--compare", help="another run's verdicts: print how many differ")
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    result = asyncio.run(verdicts(Task(args.task), args.concurrency))
    Path(args.out).write_text(json.dumps(result))
    summary = {"answers": len(result), "pass": sum(result.values()),
               "sandbox_ms_per_run_2_at_a_time": round(asyncio.run(sandbox_ms()), 1)}
    if args.compare:
        other = json.loads(Path(args.compare).read_text())
        summary["differ"] = sorted(k for k in result.keys() | other.keys() if result.get(k) != other.get(k))
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
