"""``archsearch optimize``: wires an experiment folder, the search, the report and the export."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from rich.console import Console
from rich.live import Live
from rich.text import Text

from ..experiment import Experiment, default_experiment


def add_parser(sub) -> None:
    p = sub.add_parser("optimize", help="search the space for the best pipelines and freeze the chosen one")
    p.add_argument("experiment", nargs="?", help="experiment folder (default: experiments/humaneval-local)")
    p.add_argument("--space", help="search-space YAML (default: the experiment's)")
    p.add_argument("--objective", help="objective YAML (default: the experiment's)")
    p.add_argument("--trials", type=int, help="total trials in the study (a rerun continues up to this)")
    p.add_argument("--budget-usd", type=float, help="hard cap on new spend in dollars")
    p.add_argument("--budget-calls", type=int, help="hard cap on new paid calls")
    p.add_argument("--storage", help="Optuna storage URL (default: sqlite in the experiment's out/ folder)")
    p.add_argument("--study", help="study name (default: derived from experiment, space and objective)")
    p.add_argument("--sampler", default="surrogate", choices=["surrogate", "tpe", "random", "nsga2"],
                   help="what proposes pipelines: surrogate (default: the Bayesian surrogate, Thompson sampling "
                        "priced by the calls a proposal would buy), tpe, random or nsga2 (Optuna's)")
    p.add_argument("--seed", type=int)
    p.add_argument("--cache", help="call cache URL (default: the task's cache file)")
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--out", help="output folder (default: the experiment's out/)")
    p.add_argument("--workers", type=int, default=1, help="worker processes sharing the study (joblib, loky)")
    p.add_argument("--cluster", help="run the --workers on a Dask cluster: its scheduler address (tcp://host:8786)")
    p.add_argument("--estimate", action="store_true",
                   help="make no model call: run the search as configured against stand-in models (4 runs) and say "
                        "what it would pay in calls, dollars and time, and how accurate its best pipeline may be")
    p.add_argument("--fp-cost", type=float, default=1.0,
                   help="cost of returning a wrong answer the verifier accepted, in units of a right one (for the optimal-samples advice)")
    p.set_defaults(func=cmd_optimize)


def build(args: argparse.Namespace):
    """Everything a worker needs, from the command's arguments (each worker process calls this)."""
    from ..llm.cache import CallCache
    from ..llm.client import LLMClient
    from ..llm.local import local_slots
    from ..llm.shared_budget import SharedBudget
    from ..objectives import load_objective
    from ..space import SearchSpace
    from ..tasks.task import Task
    from .search import SearchSettings

    exp = Experiment(args.experiment or default_experiment())
    cfg = exp.config
    task = Task(exp.path(cfg.task))
    space = SearchSpace(args.space or exp.path(cfg.space))
    objective = load_objective(args.objective or exp.path(cfg.objective))
    out = Path(args.out) if args.out else exp.out_dir
    out.mkdir(parents=True, exist_ok=True)
    study = args.study or cfg.study or f"{exp.dir.resolve().name}-{space.name}-{objective.name}"   # "." has a name too
    cache_url = args.cache or task.cache_url or f"sqlite:///{(out / 'calls.sqlite').resolve()}"
    cache = CallCache(cache_url, claims=args.workers > 1 or not cache_url.startswith("sqlite"))
    budget = SharedBudget(cache.engine, f"study:{study}",
                          usd=args.budget_usd if args.budget_usd is not None else objective.budget.usd,
                          calls=args.budget_calls if args.budget_calls is not None else objective.budget.calls)
    settings = SearchSettings(task=task, space=space, objective=objective, trials=args.trials or cfg.trials,
                              storage=args.storage or f"sqlite:///{(out / 'study.sqlite').resolve()}", study_name=study,
                              out_dir=out, sampler=args.sampler, seed=cfg.seed if args.seed is None else args.seed,
                              concurrency=args.concurrency, budget=budget, wall_minutes=objective.budget.wall_minutes)
    client = LLMClient(cache=cache, max_concurrency=args.concurrency, provider_concurrency={"local": local_slots()},
                       timeout_s=objective.call_timeout_s)
    from ..bayes.fit import use_compile_cache

    use_compile_cache(compile_cache_folder(os.environ))
    return exp, settings, client, cache_url


def compile_cache_folder(env) -> str | None:
    """Where the surrogate's compiled code is kept between searches: ``ARCHSEARCH_COMPILE_CACHE``
    (a folder, or ``off``), else archsearch/jax under the user's cache folder."""
    chosen = env.get("ARCHSEARCH_COMPILE_CACHE")
    if chosen is not None:
        return None if chosen.strip().lower() in ("", "off", "none", "0") else chosen
    base = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return str(Path(base) / "archsearch" / "jax")


def run_worker(args: argparse.Namespace, index: int) -> dict:
    """One of ``--workers N`` processes: same study, same cache, same budget."""
    from .search import Search

    _, settings, client, _ = build(args)
    settings.seed += index  # different proposals per worker
    search = Search(settings, client)
    outcomes = search.run()
    return {"worker": index, "trials": [o.number for o in outcomes], "stats": client.stats.as_dict(), "stopped": search.stopped}


def _run_workers(args: argparse.Namespace, settings, console) -> list[dict]:
    """``--workers N`` processes through joblib: loky on this machine, or a Dask cluster's workers
    (``--cluster``, or any joblib.parallel_config(backend=...) active around this call)."""
    from joblib import Parallel, delayed, parallel_config

    jobs = (delayed(run_worker)(args, i) for i in range(args.workers))
    if args.cluster:
        from dask.distributed import Client

        with Client(args.cluster) as client, parallel_config(backend="dask"):
            console.print(f"starting {args.workers} workers on the Dask cluster {client.scheduler.address} "
                          f"sharing {settings.storage}")
            return Parallel(n_jobs=args.workers)(jobs)
    console.print(f"starting {args.workers} worker processes (joblib) on {settings.storage}")
    return Parallel(n_jobs=args.workers)(jobs)


def cmd_optimize(args: argparse.Namespace) -> int:
    from .conclude import conclude

    exp, settings, client, cache_url = build(args)
    console = Console(stderr=True)
    if args.estimate:
        return _estimate(settings, client, console)
    console.print(f"[bold]archsearch optimize[/] {exp.dir} — space {settings.space.name}, objective "
                  f"{settings.objective.name}, study {settings.study_name}, cache {cache_url}")
    search = _search(args, settings, client, console)
    if search.stopped:
        console.print(f"[yellow]stopped early:[/] {search.stopped}")
    if not search.front():
        console.print("[red]no pipeline completed; nothing to report[/]")
        return 1
    console.print("the posterior, the choice and the final split ...")
    conclusion = conclude(search, args.fp_cost, settings.seed)
    return _report(search, conclusion, client, cache_url, console)


def _estimate(settings, client, console) -> int:
    import json

    import numpy as np

    from .estimate import best_accuracy, estimate

    console.print(f"estimating {settings.trials} trials of {settings.study_name} against stand-in models "
                  "(no model is called) ...")
    found = estimate(settings, client.cache)
    band = found.band
    calls, usd, seconds = band("paid_calls"), band("usd"), band("seconds")
    limits = [f"${settings.budget.usd:g}" if settings.budget.usd is not None else "",
              f"{settings.budget.calls} calls" if settings.budget.calls is not None else ""]
    console.print(f"  paid calls  {calls[0]:.0f}  [90%: {calls[1]:.0f} to {calls[2]:.0f}]", soft_wrap=True)
    console.print(f"  dollars     ${usd[0]:.4f}  [90%: ${usd[1]:.4f} to ${usd[2]:.4f}]   budget: "
                  f"{', '.join(x for x in limits if x) or 'none'}", soft_wrap=True)
    console.print(f"  wall time   {seconds[0] / 60:.1f} min  [90%: {seconds[1] / 60:.1f} to {seconds[2] / 60:.1f}]",
                  soft_wrap=True)
    best = best_accuracy(settings, client.cache, np.random.default_rng(settings.seed))
    if best is None:
        console.print("  best accuracy: nothing of this task is recorded yet, so only the surrogate's prior speaks "
                      "(anything from a few percent to nearly all); it narrows from the first trial", soft_wrap=True)
    else:
        from .report import describe

        console.print(f"  best accuracy on new questions, from what is recorded: {best[0]} -- {describe(best[1])}",
                      soft_wrap=True)
    settings.out_dir.mkdir(parents=True, exist_ok=True)
    (settings.out_dir / "estimate.json").write_text(json.dumps(found.as_dict(), indent=1))
    return 0


def _search(args: argparse.Namespace, settings, client, console):
    """Run the study: in this process with a live status line, or in ``--workers`` processes."""
    from .search import Search
    from .study import make_sampler, make_storage, open_study

    search = Search(settings, client)
    if args.workers > 1:
        for r in _run_workers(args, settings, console):
            console.print(f"worker {r['worker']}: {len(r['trials'])} trials, {r['stats']['calls']} paid calls, "
                          f"{r['stats']['cache_hits']} cache hits" + (f", stopped: {r['stopped']}" if r["stopped"] else ""))
            search.stopped = search.stopped or r["stopped"]
        search.storage = make_storage(settings.storage)
        search.study = open_study(settings, make_sampler("tpe", settings.seed), search.storage)
        return search
    with Live(_status(search, client, None), console=console, refresh_per_second=4, transient=False) as live:
        search.on_progress = lambda info: live.update(_status(search, client, info))
        search.run()
    console.print()   # the status line ends here: what follows starts on a line of its own
    return search


def _status(search, client, info) -> Text:
    s, settings = client.stats, search.settings
    done, last = (info["finished"] if info else 0), ""
    if info:
        goal = settings.objective.metrics[0]
        front = search.front()
        best = (max if goal.direction == "maximize" else min)((t.values[0] for t in front), default=float("nan"))
        last = f" | front {len(front)} pipelines, best {goal.name} {best:.3f}"
    return Text(f"trials {done}/{settings.trials} | paid calls {s.calls} | cache hits {s.cache_hits} | "
                f"${s.usd:.4f} spent | retries {s.retries} | failed calls {s.failures}{last}")


def _report(search, conclusion, client, cache_url: str, console) -> int:
    """Print the front and the conclusion; write front.png, report.json and the chosen pipeline."""
    from ..spec import save_spec
    from .records import TrialRecord
    from .report import cost_metric, example_traces, export, front_table, points, print_conclusion, summary, write_report

    settings, out = search.settings, search.settings.out_dir
    trials = [TrialRecord.of(t) for t in search.study.trials]
    failures = [{"trial": r.number, "state": r.state, "failure": r.failure, "failed_questions": r.failed_questions,
                 "retried_questions": r.retried_questions}
                for r in trials if r.failure or r.failed_questions or r.retried_questions]
    report = {"study": settings.study_name, "storage": settings.storage, "cache": cache_url, "stopped": search.stopped,
              "failures": failures, "front": [{"trial": r.number, "values": r.values, "search": r.search.model_dump()}
                                               for r in map(TrialRecord.of, search.front())],
              "cost_metric": cost_metric(settings.objective), "trials": points(search)}
    wide = Console(width=max(Console().width, 170))
    wide.print(front_table(search, conclusion))
    if client.stats.held_summary():
        console.print(f"slow calls: {client.stats.held_summary()}")
    _predicted_vs_spent(settings, client, console)
    if failures or client.stats.failures:
        console.print(f"[yellow]{client.stats.failures} calls failed after every retry "
                      f"(attempt errors: {client.stats.errors}); {len(failures)} trials had failures — see report.json")
    if conclusion is None:
        console.print("no Pareto pipeline meets the objective's constraints; nothing exported")
        write_report(out, {**report, "client": client.stats.as_dict()})
        return 1
    if conclusion.advice is not None:
        conclusion.advice_path = out / "resample-until-accepted.yaml"
        save_spec(conclusion.advice, conclusion.advice_path)
    print_conclusion(wide, conclusion)
    export(search, conclusion, out / "pipeline.yaml")
    traces = example_traces(search, conclusion) if conclusion.final is not None else {}
    write_report(out, {**report, **summary(conclusion), "traces": traces, "client": client.stats.as_dict()})
    console.print(f"wrote {out / 'pipeline.yaml'}, {out / 'report.html'}, {out / 'front.png'}, {out / 'report.json'}")
    return 0


def _predicted_vs_spent(settings, client, console) -> None:
    """After a real search: what --estimate predicted (if it was asked) against what was paid."""
    import json

    path = settings.out_dir / "estimate.json"
    if not path.exists():
        return
    est = json.loads(path.read_text())
    c, u = est["paid_calls"], est["usd"]
    console.print(f"estimate vs spent: paid calls {c['median']:.0f} [{c['low90']:.0f}, {c['high90']:.0f}] predicted, "
                  f"{client.stats.calls} spent; dollars ${u['median']:.4f} [${u['low90']:.4f}, ${u['high90']:.4f}] "
                  f"predicted, ${client.stats.usd:.4f} spent", soft_wrap=True)
