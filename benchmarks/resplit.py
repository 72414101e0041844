"""Does the exported choice hold out of sample? Re-split the recorded questions many times.

For each of ``--splits`` random re-splits of every recorded question into search / select / final
(the experiment's split sizes), run a search on the search split (TPE on the default objective,
``--trials`` trials, the baseline first, as `archsearch optimize` runs it; every pipeline's
per-question outcomes come from one replay of the recorded pool, no new calls), then choose by:

  (a) the new rule: posterior means on new questions, P(beats baseline) >= 0.9, the top 3 compared
      with the baseline question by question on the select split through Thresholdout and their
      posteriors updated with it (archsearch/selection.py);
  (b) the maximum raw search score among the front (ties: fewer calls);
  (c) greedy (the space's cheapest pipeline);
  (d) the oracle: the best pipeline of the space on the final split;

and score each on the final split. Prints mean final accuracies, paired differences with 90%
intervals (t over re-splits), and how often rule (a)'s predicted 90% interval for its final score
held the measured one.

    python benchmarks/resplit.py [--experiment experiments/humaneval-local] [--space spaces/sampling.yaml]
                                 [--splits 20] [--trials 30] [--compare-with RESULTS_FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

import numpy as np
import optuna
from scipy import stats

sys.path.insert(0, str(Path(__file__).parent))
from tabular import RESULTS, NoCalls  # noqa: E402

from archsearch.bayes.evidence import Evidence  # noqa: E402
from archsearch.bayes.plan import plan_of  # noqa: E402
from archsearch.bayes.resources import release_compiled_code  # noqa: E402
from archsearch.candidates import enumerate_space  # noqa: E402
from archsearch.evaluate import aevaluate  # noqa: E402
from archsearch.experiment import Experiment  # noqa: E402
from archsearch.llm import CallCache, LLMClient  # noqa: E402
from archsearch.objectives import load_objective  # noqa: E402
from archsearch.optimize.decide import Option, SelectSplit, decide, rank_key  # noqa: E402
from archsearch.optimize.tpe import RungAwareTPE  # noqa: E402
from archsearch.pipeline import Pipeline  # noqa: E402
from archsearch.space import SearchSpace, spec_fingerprint  # noqa: E402
from archsearch.spec import Measured  # noqa: E402
from archsearch.stats import percentile, wilson_interval  # noqa: E402
from archsearch.tasks import Task  # noqa: E402
from archsearch.thresholdout import Thresholdout  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
optuna.logging.set_verbosity(optuna.logging.ERROR)


def outcomes(task: Task, specs, cache: CallCache, memo: dict, name: str) -> dict[str, np.ndarray]:
    """Per pipeline and question (all records): right?, calls, latency -- replayed from the pool."""
    path = RESULTS / f"{name}-outcomes.npz"
    if path.exists():
        table = dict(np.load(path))
        if table["correct"].shape == (len(specs), len(task.split("all"))):
            return table
        print(f"{path.name} holds another space's pipelines ({table['correct'].shape[0]}, not {len(specs)}): rebuilding")
    records = task.split("all")   # worked examples (demos) are shown, never scored
    client = LLMClient(NoCalls(), cache, max_retries=0)

    first = {}   # a pipeline whose settings change nothing (spec_fingerprint) is run once
    for p, s in enumerate(specs):
        first.setdefault(spec_fingerprint(s), p)

    async def run():
        try:
            return {p: await aevaluate(Pipeline(specs[p], client, sandbox_memo=memo), task, records, "all", concurrency=40)
                    for p in first.values()}
        finally:
            await client.release_loop()

    distinct = asyncio.run(run())
    reports = [distinct[first[spec_fingerprint(s)]] for s in specs]
    index = {r.id: i for i, r in enumerate(records)}
    out = {k: np.zeros((len(specs), len(records))) for k in ("correct", "calls", "latency", "failed")}
    for p, report in enumerate(reports):
        for o in report.outcomes:
            q = index[o.id]
            out["correct"][p, q], out["calls"][p, q] = o.correct, o.calls + o.cache_hits
            out["latency"][p, q], out["failed"][p, q] = o.seconds, o.error is not None
    RESULTS.mkdir(exist_ok=True)
    np.savez_compressed(path, **out)
    return out


def measured(table, p: int, questions: np.ndarray) -> Measured:
    right = int(table["correct"][p, questions].sum())
    low, high = wilson_interval(right, len(questions))
    lat = list(table["latency"][p, questions])
    return Measured(split="search", questions=len(questions), accuracy=right / len(questions), accuracy_low=low,
                    accuracy_high=high, usd_per_question=0.0, latency_p50_s=percentile(lat, 50),
                    latency_p95_s=percentile(lat, 95), calls_per_question=float(table["calls"][p, questions].mean()))


def split_questions(rng: np.random.Generator, questions: int, sizes: tuple[int, int]) -> tuple[np.ndarray, ...]:
    """One re-split of the questions: (search, select, final) indices; ``sizes``: the search and select sizes."""
    order = rng.permutation(questions)
    return order[: sizes[0]], order[sizes[0]: sizes[0] + sizes[1]], order[sizes[0] + sizes[1]:]


def one_split(seed, task, space, objective, specs, fps, table, cache, memo, sizes, trials, min_beat) -> dict:
    rng = np.random.default_rng(seed)
    search_q, select_q, final_q = split_questions(rng, len(task.split("all")), sizes)
    by_fp = {fp: i for i, fp in enumerate(fps)}
    base_params, base_spec = space.baseline(task)
    base = by_fp[spec_fingerprint(base_spec)]
    study = optuna.create_study(directions=objective.directions, sampler=RungAwareTPE(seed=seed, multivariate=True,
                                                                                      n_startup_trials=8))
    study.enqueue_trial(base_params)
    for _ in range(trials):
        trial = study.ask()
        p = by_fp[spec_fingerprint(space.build(trial, task))]
        trial.set_user_attr("p", p)
        study.tell(trial, objective.values(measured(table, p, search_q)))
    front = {t.user_attrs["p"] for t in study.best_trials}
    options = [Option(p, fps[p], specs[p], measured(table, p, search_q)) for p in sorted(front) if p != base]
    baseline = Option(base, fps[base], specs[base], measured(table, base, search_q))
    records = [task.split("all")[i] for i in search_q]
    evidence = Evidence(task, records, cache, memo, [plan_of(s) for s in specs])
    evidence.refresh()
    ordered = options + [baseline]
    select = SelectSplit(Thresholdout(seed=seed),
                         lambda o, b: table["correct"][o.trial, select_q] - table["correct"][b.trial, select_q],
                         lambda o: measured(table, o.trial, select_q).accuracy)
    rule = objective.model_copy(update={"select": objective.select.model_copy(update={"min_p_beats_baseline": min_beat})})
    rule_a = decide(evidence, options, baseline, rule, select, rng)
    rule_b = min(options + [baseline], key=lambda o: (-o.search.accuracy, o.search.calls_per_question))
    final_acc = table["correct"][:, final_q].mean(axis=1)
    chosen = rule_a.chosen.trial
    predicted = evidence.on_split(plan_of(specs[chosen]), len(final_q), rng)
    lo, hi = np.percentile(predicted, [5, 95])
    return {"seed": seed, "a": final_acc[chosen], "b": final_acc[rule_b.trial], "c": final_acc[base],
            "d": float(final_acc.max()), "a_pipeline": chosen, "b_pipeline": rule_b.trial, "reason": rule_a.reason,
            "predicted_low": float(lo), "predicted_high": float(hi), "covered": bool(lo <= final_acc[chosen] <= hi),
            "a_search": rule_a.chosen.search.accuracy, "b_search": rule_b.search.accuracy,
            "rank_key_unused": str(rank_key(objective, rule_a.chosen)),
            # how sure the posterior was that the raw-max choice beats greedy, and whether it did on the final split
            "b_p_beats": next((o.p_beats for o in ordered if o.trial == rule_b.trial), None),
            "b_beat_greedy_final": bool(final_acc[rule_b.trial] > final_acc[base]),
            "p_beats_select": next((o.p_beats_select for o in ordered if o.p_beats_select is not None), None)}


def paired(x: np.ndarray) -> dict:
    n = len(x)
    half = stats.t.ppf(0.95, n - 1) * x.std(ddof=1) / np.sqrt(n) if n > 1 else float("nan")
    return {"mean": float(x.mean()), "low90": float(x.mean() - half), "high90": float(x.mean() + half)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--experiment", default=str(ROOT / "experiments/humaneval-local"))
    p.add_argument("--space", help="default: the experiment's")
    p.add_argument("--splits", type=int, default=20)
    p.add_argument("--trials", type=int, default=30)
    p.add_argument("--min-beat", type=float, default=0.9, help="P(beats the baseline) a choice needs (ablation)")
    p.add_argument("--compare-with", help="another space's results file (same experiment and splits): the paired "
                                          "gain of this space's choice over that one's")
    args = p.parse_args()
    start = time.perf_counter()
    exp = Experiment(args.experiment)
    task = Task(exp.path(exp.config.task))
    space = SearchSpace(args.space or exp.path(exp.config.space))
    objective = load_objective(exp.path(exp.config.objective))
    specs = [s for _, s in enumerate_space(space, task)]
    fps = [spec_fingerprint(s) for s in specs]
    cache, memo = CallCache(task.cache_url), {}
    name = f"{exp.dir.name}-{space.name}"
    table = outcomes(task, specs, cache, memo, name)
    assert not table["failed"].any(), "some pipeline needs calls that are not recorded"
    sizes = tuple(len([r for r in task.records if r.split == s]) for s in ("search", "select"))
    rows = []
    for seed in range(args.splits):
        rows.append(one_split(seed, task, space, objective, specs, fps, table, cache, memo, sizes, args.trials,
                              args.min_beat))
        release_compiled_code()   # NUTS compiles anew each fit; its memory maps would pile up
        r = rows[-1]
        print(f"split {seed}: a {r['a']:.3f} b {r['b']:.3f} greedy {r['c']:.3f} oracle {r['d']:.3f} "
              f"predicted [{r['predicted_low']:.3f}, {r['predicted_high']:.3f}] {'in' if r['covered'] else 'OUT'}",
              flush=True)
    col = {k: np.array([r[k] for r in rows], float) for k in ("a", "b", "c", "d")}
    result = {"experiment": exp.dir.name, "space": space.name, "splits": len(rows), "sizes": sizes, "min_beat": args.min_beat,
              "mean_final": {k: float(v.mean()) for k, v in col.items()},
              "a_minus_b": paired(col["a"] - col["b"]), "a_minus_greedy": paired(col["a"] - col["c"]),
              "oracle_minus_a": paired(col["d"] - col["a"]),
              "predicted_interval_coverage": float(np.mean([r["covered"] for r in rows])),
              "seconds": time.perf_counter() - start, "rows": rows}
    if args.compare_with:
        other = json.loads(Path(args.compare_with).read_text())
        theirs = {r["seed"]: r["a"] for r in other["rows"]}
        mine = [r for r in rows if r["seed"] in theirs]
        result[f"a_minus_{other['space']}_a"] = paired(np.array([r["a"] - theirs[r["seed"]] for r in mine]))
    suffix = "" if args.min_beat == 0.9 else f"-beat{args.min_beat:g}"
    (RESULTS / f"{name}-resplit{suffix}.json").write_text(json.dumps(result, indent=1, default=float))
    print(json.dumps({k: v for k, v in result.items() if k != "rows"}, indent=1, default=float))


if __name__ == "__main__":
    main()
