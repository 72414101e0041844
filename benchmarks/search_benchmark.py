"""The surrogate on the recorded pools, no new calls: calibration on held-out pipelines, and
samplers compared by the calls they pay before finding a pipeline within 1 point of the best.

    python benchmarks/search_benchmark.py calibration [--seeds 20] [--evaluated 8] [--space S] [--experiment E]
                                                      [--fit-on any|no-written] [--no-non-call]
    python benchmarks/search_benchmark.py samplers [--seeds 10] [--max-trials 60] [--space S] [--experiment E]
    python benchmarks/search_benchmark.py families [--space S] [--experiment E] [--split test]

Calibration: fit on the calls ``--evaluated`` random pipelines bought, predict every other
pipeline's search-split accuracy, tokens and latency per question, compare with what the real
pipeline measured. Coverage of accuracy is by randomised PIT (a score over 40 questions sits on a
1/40 lattice) with the plain 5-95% interval's hit rate beside it; the figures that matter are on
the pipelines that need unbought calls (the others replay exactly).

Families: the best pipelines of each layer kind the space offers (rank, fuse, critique, LLM judge,
visible tests, votes), so a reader sees whether a technique helped or hurt against the others;
``--split test`` replays the pool recorded on the held-out problems instead of the search split.

Samplers, as ``archsearch optimize`` runs them: ``surrogate`` is SurrogateSampler (probe each
generator model with its cheapest pipeline, then Thompson); ``tpe``, ``random`` and ``gp`` start
with the space's baseline (its cheapest pipeline), which optimize enqueues for them; ``gp`` is
Optuna's own GPSampler (the GP-BO peer; needs torch: pip install torch==2.13.0). "Calls" are the
distinct recorded calls a search would have paid for: the union of what its evaluated pipelines
consumed. A run that never reaches the target counts its calls at ``--max-trials`` (censored: raise
it, e.g. to 2000 for tpe and random, to measure them until they reach it). A run of some samplers keeps the others' figures
in the results file when the pool is the same. ``floor`` is the cheapest target pipeline's own
calls, ``floor_after_baseline`` the fewest any search that starts with the baseline can pay; the
surrogate's ``floor_after_probes`` is the fewest calls any search that first makes its probes could
pay: the probes' calls together with the cheapest target's.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import optuna

sys.path.insert(0, str(Path(__file__).parent))
from tabular import RESULTS, FilteredCache, build_table  # noqa: E402

from archsearch.bayes.evidence import Evidence  # noqa: E402
from archsearch.bayes.fit import Surrogate  # noqa: E402
from archsearch.bayes.non_call import NonCallTimes  # noqa: E402
from archsearch.bayes.plan import plan_of, written_tests  # noqa: E402
from archsearch.candidates import enumerate_space  # noqa: E402
from archsearch.objectives import MetricGoal, Objective  # noqa: E402
from archsearch.optimize.report import describe  # noqa: E402
from archsearch.optimize.sampler import SurrogateSampler  # noqa: E402
from archsearch.space import SearchSpace, spec_fingerprint  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
optuna.logging.set_verbosity(optuna.logging.ERROR)


def judge(draws: np.ndarray, measured: np.ndarray, rng: np.random.Generator) -> dict:
    lo, hi = np.percentile(draws, [5, 95], axis=0)
    below = (draws < measured - 1e-9).mean(axis=0)
    at_or_below = (draws <= measured + 1e-9).mean(axis=0)
    pit = below + rng.random(len(measured)) * (at_or_below - below)
    return {"pit_hit": (pit >= 0.05) & (pit <= 0.95), "pit_below": pit < 0.05, "pit_above": pit > 0.95,   # which side misses
            "interval_hit": (lo - 1e-9 <= measured) & (measured <= hi + 1e-9),
            "error": np.abs(draws.mean(axis=0) - measured), "relative": np.abs(draws.mean(axis=0) - measured) / np.maximum(
                np.abs(measured), 1e-9),
            # the predictive median as the point prediction: for a wide log-normal (latency) the mean sits far above it
            "relative_median": np.abs(np.median(draws, axis=0) - measured) / np.maximum(np.abs(measured), 1e-9)}


def calibrated_reference(draws: np.ndarray, rng: np.random.Generator, replicates: int = 200) -> np.ndarray:
    """Hits of the 90% randomised-PIT check per pseudo-truth: each is one posterior draw taken as the
    truth for EVERY pipeline at once (its shared parameters, its one sitting), judged against the
    other draws -- what a perfectly calibrated model would score on these correlated pipelines."""
    picks = rng.choice(len(draws), min(replicates, len(draws)), replace=False)
    hits = np.empty((len(picks), draws.shape[1]))
    for r, j in enumerate(picks):
        hits[r] = judge(np.delete(draws, j, axis=0), draws[j], rng)["pit_hit"]
    return hits


def calibration(rows, plans, task, records, cache, memo, seeds: int, evaluated: int, fit_on: str = "any",
                non_call: bool = True) -> dict:
    """``fit_on``: "any" pipeline of the space, or only those without model-written tests
    ("no-written": every writer call is then unbought, and the written tests known from the prior).
    ``non_call``: learn the non-call time per step from the evaluated pipelines (False: calls only)."""
    tally: dict[str, list] = {}

    def add(name, result):
        for k, v in result.items():
            tally.setdefault(f"{name}:{k}", []).append(np.asarray(v, float))

    fits, references = [], {}
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        pickable = [i for i in range(len(rows)) if fit_on == "any" or not any(written_tests(x) for x in plans[i].layers)]
        chosen = {pickable[k] for k in rng.choice(len(pickable), evaluated, replace=False).tolist()}
        bought = set().union(*(rows[i].keys for i in chosen))
        evidence = Evidence(task, records, FilteredCache(cache, bought), memo, plans, Surrogate(seed=seed))
        if evidence.refresh() is None:
            continue
        if non_call:   # as a search learns them: from the evaluations of the pipelines it ran
            evidence.non_call = NonCallTimes.of(rows[i].non_call or {} for i in sorted(chosen))
        fits.append(evidence.posterior.seconds)
        held = [i for i in range(len(rows)) if i not in chosen]
        sim = evidence.on_search([plans[i] for i in held], rng)
        unknown = ~sim.determined
        for metric, attr in (("accuracy", "accuracy"), ("calls", "calls_per_question"), ("tokens", "tokens_per_question"),
                             ("latency", "latency_p50_s")):
            measured = np.array([getattr(rows[i], attr) for i in held])
            draws = {"accuracy": sim.accuracy, "calls": sim.calls, "tokens": sim.tokens, "latency": sim.latency_p50}[metric]
            if metric == "calls":   # only pipelines that stop early spend a random number of calls
                stops = np.array([any(g.params.stop != "never" for g in plans[i].generators()) for i in held]) & unknown
                if stops.any():
                    add("calls:sequential-unbought", judge(draws[:, stops], measured[stops], rng))
                    add("calls:sequential-unbought-mean", {"relative": [abs(draws[:, stops].mean() - measured[stops].mean())
                                                                        / measured[stops].mean()]})
                continue
            add(f"{metric}:all", judge(draws, measured, rng))
            if unknown.any():
                add(f"{metric}:unbought", judge(draws[:, unknown], measured[unknown], rng))
                references.setdefault(metric, []).append(calibrated_reference(draws[:, unknown], rng))
            written = np.array([any(written_tests(layer) for layer in plans[i].layers) for i in held]) & unknown
            if written.any():   # pipelines whose tests a model writes, apart
                add(f"{metric}:written-unbought", judge(draws[:, written], measured[written], rng))
        summary = {k: round(float(np.mean(np.concatenate(v))), 4) for k, v in tally.items()
                   if k.startswith(("accuracy:unbought", "accuracy:written", "latency")) and k.endswith(
                       ("pit_hit", "interval_hit", "relative", "error"))}
        print(f"seed {seed}: {unknown.sum()} of {len(held)} held-out pipelines need unbought calls; so far {summary}",
              flush=True)
    out = {"seeds": seeds, "evaluated": evaluated, "fit_on": fit_on, "non_call": non_call,
           "fit_seconds_median": float(np.median(fits))}
    for k, v in tally.items():
        values = np.concatenate(v)
        out[k.replace(":", "_")] = float(np.median(values) if k.endswith(("error", "relative", "relative_median")) else np.mean(values))
        out[k.split(":")[0] + "_" + k.split(":")[1] + "_n"] = int(len(values))
    for metric, per_seed in references.items():   # pooled over seeds as the measured coverage is
        replicates = min(len(h) for h in per_seed)
        pooled = np.concatenate([h[:replicates] for h in per_seed], axis=1).mean(axis=1)
        measured = out[f"{metric}_unbought_pit_hit"]
        out[f"{metric}_unbought_calibrated_reference"] = {
            "median": float(np.median(pooled)), "range_90": [float(x) for x in np.percentile(pooled, [5, 95])],
            "share_within_0.80_0.95": float(np.mean((pooled >= 0.80) & (pooled <= 0.95))),
            "share_at_or_below_measured": float(np.mean(pooled <= measured + 1e-9))}
    return out


def run_sampler(name: str, rows, space, task, records, cache, memo, seed: int, max_trials: int, target: float) -> dict:
    by_fp = {r.fingerprint: r for r in rows}
    targets = [r for r in rows if r.accuracy >= target - 1e-9]
    bought: set[str] = set()
    obj = Objective(name="acc", metrics=[MetricGoal(name="accuracy", direction="maximize")])
    if name == "surrogate":
        sampler = SurrogateSampler(space, task, records, obj, FilteredCache(cache, bought), memo, seed=seed)
    elif name == "tpe":
        sampler = optuna.samplers.TPESampler(seed=seed, multivariate=True, n_startup_trials=8)
    elif name == "random":
        sampler = optuna.samplers.RandomSampler(seed=seed)
    elif name == "gp":
        sampler = optuna.samplers.GPSampler(seed=seed, n_startup_trials=8)
    else:
        raise SystemExit(f"unknown sampler {name}")
    study = optuna.create_study(direction="maximize", sampler=sampler)
    if name != "surrogate":   # their first trial, as archsearch optimize runs them (the surrogate probes instead)
        study.enqueue_trial(space.baseline(task)[0])
    best, trials, path = -1.0, 0, []
    while trials < max_trials:
        trials += 1
        trial = study.ask()
        row = by_fp[spec_fingerprint(space.build(trial, task))]
        trial.set_user_attr("fingerprint", row.fingerprint)
        path.append([trials, row.fingerprint[:10], round(row.accuracy, 4), len(row.keys - bought)])
        bought |= row.keys
        best = max(best, row.accuracy)
        study.tell(trial, row.accuracy)
        if best >= target - 1e-9:
            break
    reached = best >= target - 1e-9
    out = {"calls": len(bought), "trials": trials, "reached": reached}
    if name == "surrogate":  # each seed's model compiles anew: free the compiled code (10 seeds ran out of memory)
        import jax

        sampler.close()   # first end its background refit, which runs that code

        jax.clear_caches()
        # the calls its probes bought (each generator's cheapest pipeline, before any fit), and the
        # fewest a search that makes those probes can pay to reach the target: probes and a target together
        probed = set().union(*(by_fp[e["probe"]].keys for e in sampler.log if "probe" in e))
        out |= {"probe_calls": len(probed), "floor_after_probes": min(len(probed | r.keys) for r in targets),
                "path": path}   # each trial: its number, fingerprint, accuracy and the calls it newly bought
    return out


def kinds_of(spec) -> str:
    """The pipeline's shape without its numbers: e.g. 'generate+verify+test+vote'."""
    return "+".join(dict.fromkeys(layer.kind for layer in spec.layers))


def families(rows, specs) -> dict:
    shapes: dict[str, list] = {}
    for r in rows:
        shapes.setdefault(kinds_of(specs[r.fingerprint]), []).append(r)
    out = {}
    for shape, group in sorted(shapes.items(), key=lambda kv: -max(r.accuracy for r in kv[1])):
        group.sort(key=lambda r: (-r.accuracy, r.calls_per_question))
        top = group[0]
        out[shape] = {"pipelines": len(group), "best_accuracy": top.accuracy, "median_accuracy":
                      statistics.median(r.accuracy for r in group), "best_calls_per_question": top.calls_per_question,
                      "best": describe(specs[top.fingerprint])}
        print(f"{shape:40s} {len(group):5d} pipelines  best {top.accuracy:.3f} at {top.calls_per_question:5.2f} "
              f"calls  median {out[shape]['median_accuracy']:.3f}  {out[shape]['best']}", flush=True)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=["calibration", "samplers", "families"])
    p.add_argument("--experiment", default=str(ROOT / "experiments/humaneval-archon"))
    p.add_argument("--space", default=str(ROOT / "spaces/archon.yaml"))
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--max-trials", type=int, default=60)
    p.add_argument("--samplers", default="surrogate,tpe,gp,random")
    p.add_argument("--evaluated", type=int, default=8, help="calibration: pipelines the fit sees")
    p.add_argument("--fit-on", choices=["any", "no-written"], default="any",
                   help="calibration: draw the fitted pipelines from any, or from those without model-written tests")
    p.add_argument("--split", default="search", help="the task split whose recorded pool is replayed")
    p.add_argument("--no-non-call", action="store_true",
                   help="calibration: predict latency from the calls alone (no non-call time per step)")
    args = p.parse_args()
    start = time.perf_counter()
    experiment, space_path = Path(args.experiment), Path(args.space)
    rows, task, records, cache, memo = build_table(experiment, space_path, args.split)
    tag = space_path.stem if args.split == "search" else f"{space_path.stem}-{args.split}"
    space = SearchSpace(space_path)
    specs = {spec_fingerprint(s): s for _, s in enumerate_space(space, task)}
    complete = list({r.fingerprint: r for r in rows if r.complete}.values())   # each distinct pipeline once
    best = max(r.accuracy for r in complete)
    print(f"{len(complete)} pipelines scored from the pool ({len({r.fingerprint for r in complete})} distinct) in "
          f"{time.perf_counter() - start:.1f}s; best accuracy {best:.3f}; "
          f"{len(set().union(*(r.keys for r in complete)))} recorded calls")
    if args.what == "calibration":
        plans = [plan_of(specs[r.fingerprint]) for r in complete]
        covered = [i for i, plan in enumerate(plans) if plan is not None]   # the others get no posterior
        if len(covered) < len(plans):
            print(f"{len(plans) - len(covered)} pipelines the surrogate does not cover are left out", flush=True)
        result = calibration([complete[i] for i in covered], [plans[i] for i in covered], task, records, cache, memo,
                             args.seeds, args.evaluated, args.fit_on, non_call=not args.no_non_call)
        tag += "" if args.fit_on == "any" else f"-fit-on-{args.fit_on}"
        tag += "-no-non-call" if args.no_non_call else ""
    elif args.what == "families":
        result = {"families": families(complete, specs)}
    else:
        missing = {r.fingerprint: r for r in rows if not r.complete}
        if missing:   # a sampler may propose one of them, and the pool cannot say what it would score
            example = describe(specs[next(iter(missing))])
            raise SystemExit(f"{space_path}: {len(missing)} of {len(specs)} pipelines need calls the {args.split} "
                             f"split's recorded pool lacks (e.g. {example}); record them (experiments/record_pools.sh) "
                             "before comparing samplers on this space")
        targets = [r for r in complete if r.accuracy >= best - 0.01 - 1e-9]
        baseline = next(r for r in complete if r.fingerprint == spec_fingerprint(space.baseline(task)[1]))
        result = {"best": best, "target": best - 0.01, "pipelines": len(complete),
                  "pool_calls": len(set().union(*(r.keys for r in complete))),
                  "floor": min(len(r.keys) for r in targets),
                  "floor_after_baseline": min(len(r.keys | baseline.keys) for r in targets)}
        earlier = RESULTS / f"{experiment.name}-samplers-{tag}.json"
        if earlier.exists():   # a run of some samplers keeps the others' figures on the same pool
            kept = json.loads(earlier.read_text())
            if all(kept.get(k, v) == v for k, v in result.items()):   # a file from before "floor" still matches
                result = kept | result
        for name in args.samplers.split(","):
            runs = [run_sampler(name, complete, space, task, records, cache, memo, s, args.max_trials, best - 0.01)
                    for s in range(args.seeds)]
            result[name] = {"median_calls": statistics.median(r["calls"] for r in runs),
                            "median_trials": statistics.median(r["trials"] for r in runs),
                            "reached": sum(r["reached"] for r in runs), "max_trials": args.max_trials, "runs": runs}
            if name == "surrogate":
                result[name]["median_floor_after_probes"] = statistics.median(r["floor_after_probes"] for r in runs)
            print(name, {k: v for k, v in result[name].items() if k != "runs"}, flush=True)
    result["seconds"] = time.perf_counter() - start
    out = RESULTS / f"{experiment.name}-{args.what}-{tag}.json"
    out.write_text(json.dumps(result, indent=1, default=float))
    print(json.dumps({k: v for k, v in result.items() if k not in ("runs",)}, indent=1, default=str)[:4000])


if __name__ == "__main__":
    main()
