"""Adaptive compute on the recorded pools: each fixed-n pipeline of a sampling space beside the same
pipeline that stops early (``stop: accepted`` with a test layer, ``stop: settled`` with a vote),
accuracy and calls per question on each split. Replays the pool, no new calls.

    python benchmarks/adaptive.py [--experiment experiments/humaneval-local] [--space spaces/sampling.yaml]
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
from archsearch.tasks import Task  # noqa: E402
from archsearch.techniques.generate import GenerateParams  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--experiment", default=str(ROOT / "experiments/humaneval-local"))
    p.add_argument("--space", help="default: the experiment's")
    args = p.parse_args()
    exp = Experiment(args.experiment)
    task = Task(exp.path(exp.config.task))
    space = SearchSpace(args.space or exp.path(exp.config.space))
    specs = {spec_fingerprint(s): s for _, s in enumerate_space(space, task)}
    cache, memo = CallCache(task.cache_url), {}
    client = LLMClient(NoCalls(), cache, max_retries=0)
    splits = sorted({r.split for r in task.records})

    async def score(spec):
        return {split: (await aevaluate(Pipeline(spec, client, sandbox_memo=memo), task, task.split(split), split,
                                        concurrency=40)).measured() for split in splits}

    async def everything():
        try:
            return {fp: await score(spec) for fp, spec in specs.items()}
        finally:
            await client.release_loop()

    measured = asyncio.run(everything())
    rows = []
    for fp, spec in specs.items():
        at = next((i for i, layer in enumerate(spec.layers)
                   if layer.kind == "generate" and layer.params.get("stop", "never") != "never"), None)
        if at is None:
            continue
        gen = spec.layers[at].params
        fixed_layers = [dict(layer.model_dump()) for layer in spec.layers]
        never = {"stop": "never", "confidence": GenerateParams.model_fields["confidence"].default}
        fixed_layers[at] = {**fixed_layers[at], "params": {**gen, **never}}
        twin = next((f for f, s in specs.items() if [x.model_dump() for x in s.layers] == fixed_layers), None)
        if twin is None:
            continue
        rows.append({"sequential": describe(spec), "fixed": describe(specs[twin]),
                     **{f"{split}_{k}": {"sequential": getattr(measured[fp][split], m), "fixed": getattr(measured[twin][split], m)}
                        for split in splits for k, m in (("accuracy", "accuracy"), ("calls", "calls_per_question"))}})
    for r in sorted(rows, key=lambda r: -r[f"{splits[-1]}_accuracy"]["fixed"]):
        line = " | ".join(f"{split}: acc {r[f'{split}_accuracy']['sequential']:.3f} vs {r[f'{split}_accuracy']['fixed']:.3f}, "
                          f"calls {r[f'{split}_calls']['sequential']:.2f} vs {r[f'{split}_calls']['fixed']:.2f}"
                          for split in splits)
        print(f"{r['sequential']}\n    {line}")
    out = RESULTS / f"{exp.dir.name}-{space.name}-adaptive.json"
    out.write_text(json.dumps(rows, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
