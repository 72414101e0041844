"""Samplers compared on a tabular benchmark built from the recorded pool (no new calls), and the
surrogate's calibration on held-out pipelines.

    python benchmarks/search_benchmark.py calibration [--seeds 5]
    python benchmarks/search_benchmark.py samplers [--seeds 10] [--max-trials 40] [--space spaces/sampling-members.yaml]

Samplers: ``surrogate-probe`` is SurrogateSampler as archsearch runs it (probe each model with its
cheapest pipeline, then Thompson); ``surrogate`` the same after 4 TPE startup trials; ``tpe``,
``random``; ``gp-bo`` an RBF-GP expected-improvement loop in the manner of Archon's ITAS.
"Calls" are pool samples a search would have paid for: the union of the samples its evaluated
pipelines consumed (an ensemble of n reuses the first n of a generator's pool).
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
from tabular import FilteredCache, build_table  # noqa: E402

from archsearch.bayes.conditional import simulate_scores  # noqa: E402
from archsearch.bayes.model import Shapes, Surrogate  # noqa: E402
from archsearch.bayes.observe import features  # noqa: E402
from archsearch.bayes.predict import predict_accuracy  # noqa: E402
from archsearch.bayes.sampler import SurrogateSampler  # noqa: E402
from archsearch.objectives import MetricGoal, Objective  # noqa: E402
from archsearch.space import SearchSpace, spec_fingerprint  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
optuna.logging.set_verbosity(optuna.logging.ERROR)


def calibration(rows, task, records, cache, memo, seeds: int, evaluated: int = 8,
                space_path: Path = ROOT / "spaces/sampling.yaml") -> dict:
    """Fit on the samples ``evaluated`` random pipelines bought; predict every other pipeline's
    search-split score two ways: conditioned on the known samples (``conditional.py``) and from
    the model alone (closed forms + fresh per-question noise)."""
    space = SearchSpace(space_path)
    obj = Objective(name="acc", metrics=[MetricGoal(name="accuracy", direction="maximize")])
    tally = {k: [] for k in ("conditioned", "conditioned_undetermined", "model_only")}
    replay_mismatches = replayed = 0
    details = []
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        chosen = rng.choice(len(rows), evaluated, replace=False)
        bought = set().union(*(rows[i].keys for i in chosen))
        sampler = SurrogateSampler(space, task, records, obj, FilteredCache(cache, bought), memo, seed=seed)
        sampler.surrogate = Surrogate(Shapes(), num_warmup=300, num_samples=400, seed=seed)
        sampler.candidates()
        sampler.fit()
        held = [i for i in range(len(rows)) if i not in set(chosen)]
        measured = np.array([rows[i].accuracy for i in held])
        feats = features([pipeline_shape_of(rows[i], sampler) for i in held], sampler._generators)
        post = sampler.last_posterior
        known = sampler.last_known
        determined = known.determined(feats)
        conditioned = simulate_scores(post, feats, known, np.random.default_rng(seed))
        model_only = predict_accuracy(post, feats, predictive_rng=np.random.default_rng(seed),
                                      testable=sampler.observer.testable())
        replayed += int(determined.sum())
        replay_mismatches += int((np.abs(conditioned[:, determined] - measured[determined]) > 1e-9).any(axis=0).sum())
        cond = judge_predictions(conditioned, measured, rng)
        for j in np.flatnonzero(~determined):
            details.append({"seed": seed, "pipeline": rows[held[j]].params, "measured": measured[j],
                            "known_samples": int(known.m[feats.g[j]].min()),
                            **{k: float(v[j]) for k, v in cond.items()}})
        tally["conditioned"].append(cond)
        tally["conditioned_undetermined"].append({k: v[~determined] for k, v in cond.items()})
        tally["model_only"].append(judge_predictions(model_only, measured, rng))
        summary = ", ".join(f"{k} {np.mean(np.concatenate([t['pit_hit'] for t in v])):.3f}" for k, v in tally.items())
        print(f"seed {seed}: randomised-PIT 90% coverage so far: {summary}; replay mismatches {replay_mismatches}/{replayed}",
              flush=True)
    result = {"seeds": seeds, "evaluated_pipelines": evaluated, "determined_replayed": replayed,
              "determined_replay_mismatches": replay_mismatches}
    for name, parts in tally.items():
        t = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        result[name] = {"predictions": len(t["error"])}
        if len(t["error"]):
            result[name].update(coverage_90_randomised_pit=float(np.mean(t["pit_hit"])),
                                coverage_90_percentile_interval=float(np.mean(t["interval_hit"])),
                                median_abs_error=float(np.median(t["error"])),
                                median_interval_width=float(np.median(t["width"])))
    result["undetermined_predictions"] = details
    return result


def judge_predictions(draws: np.ndarray, measured: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Per pipeline: is the measured score inside the 5–95th percentile interval of the predictive
    draws, and inside the central 90% by the randomised PIT — the calibration check for a discrete
    predictive (a score over 40 questions lives on a 1/40 lattice, where the closed percentile
    interval holds more than 90% of the mass and over-covers even when the model is right)."""
    lo, hi = np.percentile(draws, [5, 95], axis=0)
    below = (draws < measured - 1e-9).mean(axis=0)
    at_or_below = (draws <= measured + 1e-9).mean(axis=0)
    pit = below + rng.random(len(measured)) * (at_or_below - below)
    return {"predicted": draws.mean(axis=0), "low": lo, "high": hi, "pit": pit,
            "pit_hit": (pit >= 0.05) & (pit <= 0.95),
            "interval_hit": (lo - 1e-9 <= measured) & (measured <= hi + 1e-9),
            "error": np.abs(draws.mean(axis=0) - measured), "width": hi - lo}


def pipeline_shape_of(row, sampler):
    for _, fp, shape in sampler.candidates():
        if fp == row.fingerprint:
            return shape
    raise KeyError(row.fingerprint)


def run_sampler(name: str, rows, task, records, cache, memo, seed: int, max_trials: int, target: float,
                space_path: Path = ROOT / "spaces/sampling.yaml") -> dict:
    space = SearchSpace(space_path)
    by_fp = {r.fingerprint: r for r in rows}
    bought: set[str] = set()
    filtered = FilteredCache(cache, bought)
    obj = Objective(name="acc", metrics=[MetricGoal(name="accuracy", direction="maximize")])
    if name.startswith("surrogate"):
        startup = "probe" if name == "surrogate-probe" else "tpe"
        sampler = SurrogateSampler(space, task, records, obj, filtered, memo, seed=seed, min_trials=4, startup=startup)
        sampler.surrogate = Surrogate(Shapes(), num_warmup=200, num_samples=200, seed=seed)
    elif name == "tpe":
        sampler = optuna.samplers.TPESampler(seed=seed, multivariate=True, n_startup_trials=4)
    elif name == "random":
        sampler = optuna.samplers.RandomSampler(seed=seed)
    else:
        return run_gp(rows, seed, max_trials, target)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    best = -1.0
    for t in range(max_trials):
        trial = study.ask()
        row = by_fp[spec_fingerprint(space.build(trial, task))]
        trial.set_user_attr("fingerprint", row.fingerprint)
        bought |= row.keys
        best = max(best, row.accuracy)
        study.tell(trial, row.accuracy)
        if best >= target:
            return {"calls": len(bought), "trials": t + 1, "reached": True}
    return {"calls": len(bought), "trials": max_trials, "reached": False}


def run_gp(rows, seed: int, max_trials: int, target: float) -> dict:
    """A GP-BO in the manner of Archon's ITAS: RBF GP on one-hot pipeline features, expected improvement."""
    from scipy.stats import norm

    keys = sorted({k for r in rows for k in r.params})
    values = {k: sorted({json.dumps(r.params.get(k)) for r in rows}) for k in keys}
    X = np.array([[float(json.dumps(r.params.get(k)) == v) for k in keys for v in values[k]] for r in rows])
    y_all = np.array([r.accuracy for r in rows])
    rng = np.random.default_rng(seed)
    seen = list(rng.choice(len(rows), 4, replace=False))
    bought: set[str] = set()
    for i in seen:
        bought |= rows[i].keys
    if max(y_all[seen]) >= target:
        return {"calls": len(bought), "trials": len(seen), "reached": True}
    while len(seen) < max_trials:
        Xs, ys = X[seen], y_all[seen]
        mu0, sd0 = ys.mean(), ys.std() + 1e-6
        K = np.exp(-0.5 * ((Xs[:, None] - Xs[None]) ** 2).sum(-1) / 2.0) + 1e-4 * np.eye(len(seen))
        Ks = np.exp(-0.5 * ((X[:, None] - Xs[None]) ** 2).sum(-1) / 2.0)
        alpha = np.linalg.solve(K, (ys - mu0) / sd0)
        mu = mu0 + sd0 * Ks @ alpha
        var = np.clip(1 - np.einsum("ij,ji->i", Ks, np.linalg.solve(K, Ks.T)), 1e-9, None)
        s = sd0 * np.sqrt(var)
        z = (mu - ys.max()) / s
        ei = (mu - ys.max()) * norm.cdf(z) + s * norm.pdf(z)
        ei[seen] = -np.inf
        nxt = int(np.argmax(ei))
        seen.append(nxt)
        bought |= rows[nxt].keys
        if y_all[nxt] >= target:
            return {"calls": len(bought), "trials": len(seen), "reached": True}
    return {"calls": len(bought), "trials": len(seen), "reached": False}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=["calibration", "samplers"])
    p.add_argument("--experiment", default=str(ROOT / "experiments/humaneval-local"))
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--max-trials", type=int, default=40)
    p.add_argument("--samplers", default="surrogate,surrogate-probe,tpe,random,gp-bo")
    p.add_argument("--space", default=str(ROOT / "spaces/sampling.yaml"))
    p.add_argument("--evaluated", type=int, default=8, help="calibration: pipelines the fit sees")
    args = p.parse_args()
    start = time.perf_counter()
    rows, task, records, cache, memo = build_table(Path(args.experiment), Path(args.space))
    rows = [r for r in rows if r.complete]
    best = max(r.accuracy for r in rows)
    print(f"{len(rows)} pipelines scored from the pool in {time.perf_counter() - start:.1f}s; best accuracy {best:.3f}")
    if args.what == "calibration":
        result = calibration(rows, task, records, cache, memo, args.seeds, args.evaluated, Path(args.space))
    else:
        result = {"best": best, "target": best - 0.01, "pool_calls": len(set().union(*(r.keys for r in rows)))}
        for name in args.samplers.split(","):
            runs = [run_sampler(name, rows, task, records, cache, memo, s, args.max_trials, best - 0.01, Path(args.space))
                    for s in range(args.seeds)]
            result[name] = {"median_calls": statistics.median(r["calls"] for r in runs),
                            "median_trials": statistics.median(r["trials"] for r in runs),
                            "reached": sum(r["reached"] for r in runs), "runs": runs}
            print(f"{name:>9}: median calls {result[name]['median_calls']}, median trials "
                  f"{result[name]['median_trials']}, reached {result[name]['reached']}/{args.seeds}", flush=True)
    out = ROOT / "benchmarks" / "results"
    out.mkdir(exist_ok=True)
    suffix = f"-{args.evaluated}" if args.what == "calibration" else ""
    if Path(args.space).stem not in ("sampling", "sampling-cot"):
        suffix += f"-{Path(args.space).stem}"
    (out / f"{Path(args.experiment).name}-{args.what}{suffix}.json").write_text(json.dumps(result, indent=1, default=float))
    print(json.dumps({k: v for k, v in result.items() if k not in ("runs", "undetermined_predictions")}, indent=1, default=str)[:3000])


if __name__ == "__main__":
    main()
