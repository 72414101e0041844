"""Model-written tests on the recorded HumanEval pool: do they help a 0.5B model?

Replays the pool (no new call): greedy; today's chosen pipeline (greedy lead, then up to 8 samples
until the visible tests accept one, tests, vote by behaviour); greedy + 8 samples filtered by the
tests Qwen wrote (2 calls x 5 asserts, ``source: model``), by those and the visible ones
(``task+model``), and CodeT's dual agreement (``vote by: agreement``) -- each on every split, on all
problems and on those without visible tests, accuracy with a 95% interval and calls per question.

    python benchmarks/model_tests.py [--experiment experiments/humaneval-local]
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from tabular import RESULTS, replaying  # noqa: E402

from archsearch.evaluate import EvalReport, aevaluate  # noqa: E402
from archsearch.optimize.report import describe  # noqa: E402
from archsearch.pipeline import Pipeline  # noqa: E402
from archsearch.spec import PipelineSpec, load_spec  # noqa: E402
from archsearch.stats import wilson_interval  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
GREEDY = {"kind": "generate", "params": {"model": "coder", "n": 1, "temperature": 0.0, "max_tokens": 512, "style": "direct"}}


def _samples(stop: str = "never") -> dict:
    return {"kind": "generate", "params": {"model": "coder", "n": 8, "temperature": 0.8, "max_tokens": 512,
                                           "style": "direct", "stop": stop}}


def pipelines(experiment: Path) -> dict[str, list[dict]]:
    """The layers of each compared pipeline; the model-written tests exactly as recorded."""
    pool = load_spec(experiment / "pools/qwen-tests.yaml")
    written = copy.deepcopy(pool.layers[1].model_dump())
    written["params"].update(keep="passing", on_none_passed="keep_all")
    both = copy.deepcopy(written)
    both["params"]["source"] = "task+model"
    visible = {"kind": "test", "params": {"source": "task", "keep": "passing", "on_none_passed": "keep_all"}}
    behaviour = {"kind": "vote", "params": {"by": "behaviour"}}
    agreement = {"kind": "vote", "params": {"by": "agreement"}}
    return {
        "greedy": [GREEDY],
        "chosen today: greedy lead, n=8 until the visible tests accept, tests, vote": [GREEDY, _samples("accepted"), visible,
                                                                                    behaviour],
        "greedy + 8, visible tests, vote": [GREEDY, _samples(), visible, behaviour],
        "greedy + 8, model-written tests, vote": [GREEDY, _samples(), written, behaviour],
        "greedy + 8, visible + model-written tests, vote": [GREEDY, _samples(), both, behaviour],
        "greedy + 8, model-written tests, vote by agreement (CodeT)": [GREEDY, _samples(), {**written, "params": {
            **written["params"], "keep": "all"}}, agreement],
        "greedy + 8, visible + model-written tests, vote by agreement": [GREEDY, _samples(), {**both, "params": {
            **both["params"], "keep": "all"}}, agreement],
    }


def _figures(report: EvalReport, ids: set[str] | None) -> dict:
    kept = [o for o in report.outcomes if o.error is None and (ids is None or o.id in ids)]
    right = sum(o.correct for o in kept)
    low, high = wilson_interval(right, len(kept)) if kept else (float("nan"), float("nan"))
    calls = sum(o.calls + o.cache_hits for o in kept) / max(1, len(kept))
    return {"questions": len(kept), "accuracy": right / max(1, len(kept)), "low": low, "high": high, "calls": calls}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--experiment", default=str(ROOT / "experiments/humaneval-local"))
    args = p.parse_args()
    exp, task, client = replaying(args.experiment)
    base, memo = load_spec(exp.dir / "baseline.yaml").model_dump(), {}
    splits = [s for s in ("search", "select", "final") if task.split(s)]
    hidden = {r.id for r in task.records if not r.visible_tests}

    async def run() -> dict:
        out = {}
        try:
            for name, layers in pipelines(exp.dir).items():
                spec = PipelineSpec.model_validate({**base, "name": "bench", "layers": layers})
                pipe = Pipeline(spec, client, sandbox_memo=memo)
                out[name] = {"pipeline": describe(spec)}
                for split in splits:
                    report = await aevaluate(pipe, task, task.split(split), split, concurrency=16)
                    out[name][split] = {"all": _figures(report, None), "no_visible_tests": _figures(report, hidden)}
        finally:
            await client.release_loop()
        return out

    rows = asyncio.run(run())
    for name, row in rows.items():
        print(name)
        for split in splits:
            a, h = row[split]["all"], row[split]["no_visible_tests"]
            print(f"  {split:7s} all {a['accuracy']:.3f} [{a['low']:.2f}, {a['high']:.2f}] at {a['calls']:.2f} calls/q"
                  f" | no visible tests ({h['questions']}) {h['accuracy']:.3f} [{h['low']:.2f}, {h['high']:.2f}]"
                  f" at {h['calls']:.2f}")
    out = RESULTS / f"{exp.dir.name}-model-tests.json"
    out.write_text(json.dumps(rows, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
