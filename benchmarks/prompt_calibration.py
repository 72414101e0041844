"""Leave-one-variant-out calibration of the surrogate's prompt effects, on the recorded pool only.

For each prompt variant of a space (instruction + demonstrations of a generator), fit the surrogate
on every call the pipelines WITHOUT it consumed (so none of this variant's), then predict the
search-split accuracy of every pipeline that uses the left-out variant in any of its generators
(with HumanEval's sampling-prompts space, a pipeline may lead with the default prompt's greedy
answer and sample with another: it is predicted when either variant is left out). The prediction
of an unseen variant comes from its model's ability and the prompt effect's prior (bayes/MODEL.md),
so its interval must be wide enough to hold the measured accuracy about 90% of the time.

    python benchmarks/prompt_calibration.py [--experiment experiments/gsm8k-local]
                                            [--space spaces/sampling-cot-prompts.yaml] [--seeds 5]
    python benchmarks/prompt_calibration.py --experiment experiments/humaneval-local --space spaces/sampling-prompts.yaml

Coverage is judged as in search_benchmark.py: randomised PIT (a score over few questions sits on a
lattice) within 5-95%, and the plain 5-95% interval's hit rate beside it; median absolute error of
the posterior mean, in accuracy points; and the median |z|, the error in predictive standard
deviations (0.67 for a calibrated normal predictive: a check of the intervals' scale that does not
rest on the handful of 5%/95% crossings the coverage counts). Seeds vary the fit and the simulation, not the data.

What a calibrated model would show here: the pipelines of one left-out variant share its unknown
prompt effect, so their errors move together and the pooled coverage rests on a handful of variants.
For reference, the same coverage is computed against pseudo-truths drawn from the predictive itself
(one joint draw of every held-out pipeline per variant, judged by the other draws), ``--references``
times: the spread of coverage a perfectly calibrated model would produce on these variants.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from search_benchmark import judge  # noqa: E402
from tabular import RESULTS, FilteredCache, build_table  # noqa: E402

from archsearch.bayes.evidence import Evidence  # noqa: E402
from archsearch.bayes.fit import Surrogate  # noqa: E402
from archsearch.bayes.plan import plan_of  # noqa: E402
from archsearch.candidates import enumerate_space  # noqa: E402
from archsearch.space import SearchSpace, spec_fingerprint  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def variants_of(spec) -> frozenset[str]:
    """The prompts a pipeline's generators use: instruction (short) and how many demonstrations."""
    return frozenset(f"{(layer.params.get('instruction', '') or 'default')[:30]}|{len(layer.params.get('demos', []))} demos"
                     for layer in spec.layers if layer.kind == "generate")


def calibrated_coverage(sims: list[np.ndarray], references: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """([references] randomised-PIT coverage, [references, seeds x pipelines] |z|) over the held-out
    pipelines (pooled over the seeds' fits, each [draws, pipelines]) when the truth is one joint draw
    of the predictive itself, shared by the seeds."""
    out, abs_z = np.empty(references), []
    for r in range(references):
        hits, zs, source = [], [], int(rng.integers(len(sims)))
        draw = int(rng.integers(len(sims[source])))
        truth = sims[source][draw]
        for k, sim in enumerate(sims):   # one truth, as the real one is shared by every seed's fit
            rest = np.delete(sim, draw, axis=0) if k == source else sim
            hits.append(judge(rest, truth, rng)["pit_hit"])
            zs.append(np.abs(truth - rest.mean(axis=0)) / np.maximum(rest.std(axis=0), 1e-9))
        out[r] = np.mean(np.concatenate(hits))
        abs_z.append(np.concatenate(zs))
    return out, np.array(abs_z)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--experiment", default=str(ROOT / "experiments/gsm8k-local"))
    p.add_argument("--space", default=str(ROOT / "spaces/sampling-cot-prompts.yaml"))
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--references", type=int, default=400)
    args = p.parse_args()
    start = time.perf_counter()
    experiment, space_path = Path(args.experiment), Path(args.space)
    rows, task, records, cache, memo = build_table(experiment, space_path)
    specs = {spec_fingerprint(s): s for _, s in enumerate_space(SearchSpace(space_path), task)}
    rows = list({r.fingerprint: r for r in rows if r.complete}.values())
    uses = [variants_of(specs[r.fingerprint]) for r in rows]
    plans = [plan_of(specs[r.fingerprint]) for r in rows]
    every = sorted(set().union(*uses))
    print(f"{len(rows)} pipelines, variants: { {v: sum(v in u for u in uses) for v in every} }", flush=True)
    result: dict = {"experiment": experiment.name, "space": space_path.name, "seeds": args.seeds, "variants": {}}
    pooled: dict[str, list] = {"pit_hit": [], "interval_hit": [], "error": [], "z": []}
    references: list[np.ndarray] = []   # per variant: [references] coverage against a pseudo-truth
    reference_z: list[np.ndarray] = []  # per variant: [references, seeds x pipelines] |z| against it
    for variant in every:
        held = [i for i, u in enumerate(uses) if variant in u]
        bought = set().union(*(rows[i].keys for i, u in enumerate(uses) if variant not in u))
        measured = np.array([rows[i].accuracy for i in held])
        mine: dict[str, list] = {"pit_hit": [], "interval_hit": [], "error": [], "z": [], "mean": [], "width": [], "sims": []}
        for seed in range(args.seeds):
            rng = np.random.default_rng(seed)
            evidence = Evidence(task, records, FilteredCache(cache, bought), memo, plans, Surrogate(seed=seed))
            evidence.refresh()
            sim = evidence.on_search([plans[i] for i in held], rng)
            verdict = judge(sim.accuracy, measured, rng)
            for k in ("pit_hit", "interval_hit", "error"):
                mine[k].append(np.asarray(verdict[k], float))
            mine["mean"].append(sim.accuracy.mean(axis=0))
            mine["z"].append((measured - mine["mean"][-1]) / np.maximum(sim.accuracy.std(axis=0), 1e-9))
            lo, hi = np.percentile(sim.accuracy, [5, 95], axis=0)
            mine["width"].append(hi - lo)
            mine["sims"].append(sim.accuracy)
        for k in ("pit_hit", "interval_hit", "error", "z"):
            pooled[k].append(np.concatenate(mine[k]))
        coverage, abs_z = calibrated_coverage(mine["sims"], args.references, np.random.default_rng(len(references)))
        references.append(coverage)
        reference_z.append(abs_z)
        mean = np.mean(mine["mean"], axis=0)
        result["variants"][variant] = {
            "pipelines": len(held), "fit_calls": len(bought),
            "pit_coverage": float(np.mean(np.concatenate(mine["pit_hit"]))),
            "interval_coverage": float(np.mean(np.concatenate(mine["interval_hit"]))),
            "median_abs_error_points": 100 * float(np.median(np.concatenate(mine["error"]))),
            "median_interval_width_points": 100 * float(np.median(mine["width"])),
            "median_abs_z": float(np.median(np.abs(np.concatenate(mine["z"])))),
            "measured_mean": float(measured.mean()), "predicted_mean": float(mean.mean()),
            "bias_points": 100 * float((mean - measured).mean())}
        print(variant, json.dumps(result["variants"][variant]), flush=True)
    result |= {"pit_coverage": float(np.mean(np.concatenate(pooled["pit_hit"]))),
               "interval_coverage": float(np.mean(np.concatenate(pooled["interval_hit"]))),
               "median_abs_error_points": 100 * float(np.median(np.concatenate(pooled["error"]))),
               "median_abs_z": float(np.median(np.abs(np.concatenate(pooled["z"])))),
               "seconds": time.perf_counter() - start}
    weights = np.array([v["pipelines"] for v in result["variants"].values()], float)
    calibrated = (np.array(references) * weights[:, None]).sum(axis=0) / weights.sum()   # pooled as above
    result["calibrated_reference"] = {
        "pit_coverage_median": float(np.median(calibrated)),
        "share_within_0.80_0.95": float(np.mean((calibrated >= 0.80) & (calibrated <= 0.95))),
        "share_at_or_above_measured": float(np.mean(calibrated >= result["pit_coverage"] - 1e-9)),
        "pit_coverage_5_95": [float(x) for x in np.percentile(calibrated, [5, 95])]}
    median_z = np.median(np.concatenate(reference_z, axis=1), axis=1)   # per pseudo-truth, pooled as above
    result["calibrated_reference"] |= {"median_abs_z_median": float(np.median(median_z)),
                                       "median_abs_z_5_95": [float(x) for x in np.percentile(median_z, [5, 95])]}
    out = RESULTS / f"{experiment.name}-{space_path.stem}-leave-one-variant-out.json"
    out.write_text(json.dumps(result, indent=1))
    print(json.dumps({k: v for k, v in result.items() if k != "variants"}, indent=1))


if __name__ == "__main__":
    main()
