"""Prompt variants on a recorded pool: greedy and the vote of 4 samples at T=0.8 (and, on HumanEval,
the vote of the 4 samples that pass the visible tests) for each instruction / worked-examples
variant of the space, on every split, with 95% intervals. Replays the pool (no new call); a
question whose calls are not recorded yet is counted apart ("unscored"), never as wrong.

    python benchmarks/prompts.py [--experiment experiments/gsm8k-local] [--space spaces/sampling-cot-prompts.yaml]
    python benchmarks/prompts.py --experiment experiments/humaneval-local --space spaces/sampling-prompts.yaml
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from tabular import RESULTS, NoCalls  # noqa: E402

from archsearch.candidates import enumerate_space  # noqa: E402
from archsearch.evaluate import aevaluate  # noqa: E402
from archsearch.experiment import Experiment  # noqa: E402
from archsearch.llm import CallCache, LLMClient  # noqa: E402
from archsearch.optimize.report import describe  # noqa: E402
from archsearch.pipeline import Pipeline  # noqa: E402
from archsearch.space import SearchSpace, spec_fingerprint  # noqa: E402
from archsearch.stats import wilson_interval  # noqa: E402
from archsearch.tasks import Task  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def wanted(spec) -> bool:
    """Greedy alone, or 4 samples at T=0.8 with a plain vote (after the visible tests, keeping the
    passing ones, where the space has them): the recorded shapes every variant shares."""
    gen = spec.layers[0].params
    kinds = [layer.kind for layer in spec.layers]
    if gen.get("stop", "never") != "never":
        return False
    if kinds == ["generate"]:
        return gen["n"] == 1 and gen["temperature"] == 0.0
    if kinds not in (["generate", "vote"], ["generate", "test", "vote"]) or (gen["n"], gen["temperature"]) != (4, 0.8) \
            or spec.layers[-1].params.get("weight_by", "none") != "none":
        return False
    test = spec.layers[1].params
    return kinds[1] != "test" or (test.get("keep"), test.get("on_none_passed")) == ("passing", "keep_all")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--experiment", default=str(ROOT / "experiments/gsm8k-local"))
    p.add_argument("--space", default=str(ROOT / "spaces/sampling-cot-prompts.yaml"))
    args = p.parse_args()
    exp = Experiment(args.experiment)
    task = Task(exp.path(exp.config.task))
    specs = list({spec_fingerprint(s): s for _, s in enumerate_space(SearchSpace(args.space), task) if wanted(s)}.values())
    cache = CallCache(task.cache_url)
    client = LLMClient(NoCalls(), cache, max_retries=0)
    splits = [s for s in ("search", "select", "final") if task.split(s)]

    async def run() -> list[dict]:
        rows = []
        try:
            for spec in specs:
                pipe = Pipeline(spec, client, sandbox_memo={})
                row = {"pipeline": describe(spec)}
                for split in splits:
                    report = await aevaluate(pipe, task, task.split(split), split, concurrency=16)
                    scored = [o for o in report.outcomes if o.error is None]
                    right = sum(o.correct for o in scored)
                    low, high = wilson_interval(right, len(scored)) if scored else (float("nan"),) * 2
                    row[split] = {"accuracy": right / max(1, len(scored)), "low": low, "high": high,
                                  "scored": len(scored), "unscored": len(report.outcomes) - len(scored)}
                rows.append(row)
        finally:
            await client.release_loop()
        return rows

    rows = asyncio.run(run())
    for row in rows:
        print(row["pipeline"])
        print("   " + " | ".join(f"{s}: {row[s]['accuracy']:.3f} [{row[s]['low']:.2f}, {row[s]['high']:.2f}]"
                                  + (f" ({row[s]['unscored']} not recorded)" if row[s]["unscored"] else "")
                                  for s in splits))
    out = RESULTS / f"{exp.dir.name}-prompts.json"
    out.write_text(json.dumps(rows, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
