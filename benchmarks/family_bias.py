"""Is the posterior on new questions biased for a family of pipelines, before any choice among them?

The HumanEval re-split (``resplit.py --space spaces/sampling.yaml``) found the chosen pipeline's
prediction optimistic, most of all where the choice was Qwen's written tests without the visible
ones. A choice among ~1,000 pipelines on 82 questions favours the lucky (the winner's curse); a model
that overrates a family would do the same without any choice. This script tells the two apart: on the
same re-splits, fit on the search split, predict EVERY pipeline's accuracy on new questions (the
report's stratified questions, a subset of posterior draws) and compare it with what the pipeline
scored on that split's held-out questions (select and final), averaged over each family's pipelines.

    python benchmarks/family_bias.py [--splits 6] [--space spaces/sampling.yaml] [--draws 50] [--questions 256]

Prints, per family: its distinct pipelines (by ``spec_fingerprint``: settings that change nothing are
one pipeline, so none counts twice in a family's mean), the mean of (predicted - held-out) over
splits with its standard error, and the share of pipelines whose held-out score fell below / above
the prediction's 90% interval for a split of that size. Writes ``results/<experiment>-<space>-family-bias.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from resplit import ROOT, outcomes, split_questions  # noqa: E402
from tabular import RESULTS  # noqa: E402

from archsearch.bayes.evidence import Evidence  # noqa: E402
from archsearch.bayes.plan import plan_of  # noqa: E402
from archsearch.bayes.resources import release_compiled_code  # noqa: E402
from archsearch.candidates import enumerate_space  # noqa: E402
from archsearch.experiment import Experiment  # noqa: E402
from archsearch.llm import CallCache  # noqa: E402
from archsearch.space import SearchSpace, spec_fingerprint  # noqa: E402
from archsearch.tasks import Task  # noqa: E402


def family(plan) -> str:
    """Which tests a pipeline's answers pass through: the task's visible ones (a test layer on them, or
    sampling until they accept), only tests a model wrote, or none."""
    sources = {layer.params.source for layer in plan.layers if layer.kind == "test"}
    visible = bool(sources & {"task", "task+model"}) or plan.generators()[0].params.stop != "never"
    if visible:
        return "visible tests"
    return "written tests only" if "model" in sources else "no tests"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--experiment", default=str(ROOT / "experiments/humaneval-local"))
    p.add_argument("--space", default=str(ROOT / "spaces/sampling.yaml"))
    p.add_argument("--splits", type=int, default=6)
    p.add_argument("--draws", type=int, default=50, help="posterior draws used (evenly spaced)")
    p.add_argument("--questions", type=int, default=256, help="stratified new questions per draw")
    p.add_argument("--from-results", action="store_true", help="summarise the saved results again, no fitting")
    args = p.parse_args()
    start = time.perf_counter()
    exp = Experiment(args.experiment)
    task = Task(exp.path(exp.config.task))
    space = SearchSpace(args.space)
    specs = [s for _, s in enumerate_space(space, task)]
    plans = [plan_of(s) for s in specs]
    first: dict[str, int] = {}
    keep = [i for i, (spec, plan) in enumerate(zip(specs, plans))
            if plan is not None and first.setdefault(spec_fingerprint(spec), i) == i]
    families = np.array([family(plans[i]) for i in keep])
    base = keep.index(first[spec_fingerprint(space.baseline(task)[1])])   # one pipeline's own gap: no family mean
    cache, memo = CallCache(task.cache_url), {}
    table = outcomes(task, specs, cache, memo, f"{exp.dir.name}-{space.name}")
    correct = table["correct"][np.array(keep)]
    everything = task.split("all")
    sizes = tuple(len([r for r in task.records if r.split == s]) for s in ("search", "select"))
    path = RESULTS / f"{exp.dir.name}-{space.name}-family-bias.json"

    def questions(seed: int) -> tuple[np.ndarray, np.ndarray]:
        search_q, select_q, final_q = split_questions(np.random.default_rng(seed), len(everything), sizes)   # resplit.py's
        return search_q, np.concatenate([select_q, final_q])

    def luck(seed: int) -> np.ndarray:
        """Each pipeline's raw score on the search split minus on the held-out questions: the split's own
        luck, which the prediction inherits from the evidence it was fitted on (no model involved)."""
        search_q, held_q = questions(seed)
        return correct[:, search_q].mean(axis=1) - correct[:, held_q].mean(axis=1)

    result = json.loads(path.read_text()) if args.from_results else {"rows": []}
    rows = result["rows"]

    def summary() -> dict[str, dict]:
        return summarise(rows, families, base, np.array([luck(r["seed"]) for r in rows]))
    for seed in [] if args.from_results else range(args.splits):
        search_q, held_q = questions(seed)
        evidence = Evidence(task, [everything[i] for i in search_q], cache, memo, [plans[i] for i in keep])
        evidence.refresh()
        draws = np.linspace(0, evidence.posterior.draws - 1, args.draws).round().astype(int)
        rng = np.random.default_rng([seed, 1])
        predicted = evidence.on_new([plans[i] for i in keep], args.questions, rng, draws=draws, workers=2,
                                    population=True).accuracy   # [draws, P]
        # the prediction for a split of the held-out size: the population draw plus binomial noise
        split = rng.binomial(len(held_q), np.clip(predicted, 0, 1)) / len(held_q)
        low, high = np.percentile(split, [5, 95], axis=0)
        held = correct[:, held_q].mean(axis=1)
        rows.append({"seed": seed, "gap": np.round(predicted.mean(axis=0) - held, 4).tolist(), "below": (held < low).tolist(),
                     "above": (held > high).tolist()})
        release_compiled_code()
        print(f"split {seed}: " + "; ".join(
            f"{f} {np.mean(np.array(rows[-1]['gap'])[families == f]) * 100:+.1f}" for f in sorted(set(families)))
            + f"; baseline {rows[-1]['gap'][base] * 100:+.1f}", flush=True)
        result = {"experiment": exp.dir.name, "space": space.name, "splits": len(rows), "draws": args.draws,
                  "questions": args.questions, "families": summary(),
                  "seconds": time.perf_counter() - start, "rows": rows}
        path.write_text(json.dumps(result, default=float))   # after every split: a stopped run keeps its splits
    result["families"] = summary()
    print(f"{len(rows)} splits; predicted - held-out = (predicted - search score: the model's part) "
          "+ (search score - held-out: the split's luck)")
    for name, f in result["families"].items():
        print(f"{name:20s} {f['pipelines']:5d} distinct pipelines: predicted - held-out {f['gap_points']:+.1f} points "
              f"(s.e. {f['gap_se'] or float('nan'):.1f} over splits) = model {f['model_points']:+.1f} "
              f"(s.e. {f['model_se'] or float('nan'):.1f}) + luck {f['luck_points']:+.1f}; below the 90% interval "
              f"{f['below_90']:.2f}, above {f['above_90']:.2f}")


def summarise(rows: list[dict], families: np.ndarray, base: int, luck: np.ndarray) -> dict[str, dict]:
    """Per family (and for the baseline alone), in points: the mean over splits of predicted - held-out
    and its standard error, split into the model's part and the split's luck (``luck``: [splits, P]);
    and the shares of pipelines below / above their 90% interval."""
    gap = np.array([r["gap"] for r in rows])          # [splits, P]
    below, above = np.array([r["below"] for r in rows]), np.array([r["above"] for r in rows])
    groups = {**{f: families == f for f in sorted(set(families))}, "baseline": np.arange(len(families)) == base}

    def mean_se(per_split: np.ndarray) -> tuple[float, float | None]:
        return float(per_split.mean()), float(per_split.std(ddof=1) / np.sqrt(len(per_split))) if len(per_split) > 1 else None

    summary = {}
    for name, members in groups.items():
        per_split, lucky = gap[:, members].mean(axis=1) * 100, luck[:, members].mean(axis=1) * 100
        (g, g_se), (m, m_se) = mean_se(per_split), mean_se(per_split - lucky)
        summary[name] = {"pipelines": int(members.sum()), "gap_points": g, "gap_se": g_se, "model_points": m,
                         "model_se": m_se, "luck_points": float(lucky.mean()),
                         "below_90": float(below[:, members].mean()), "above_90": float(above[:, members].mean()),
                         "per_split": np.round(per_split, 1).tolist(), "luck_per_split": np.round(lucky, 1).tolist()}
    return summary

if __name__ == "__main__":
    main()
