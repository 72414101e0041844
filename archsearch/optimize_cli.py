"""``archsearch optimize``: wires an experiment folder, the search, the report and the export."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.live import Live
from rich.text import Text

from .experiment import Experiment, default_experiment


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
    p.add_argument("--sampler", default="tpe", help="tpe (default), random or nsga2")
    p.add_argument("--seed", type=int)
    p.add_argument("--cache", help="call cache URL (default: the task's cache file)")
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--out", help="output folder (default: the experiment's out/)")
    p.add_argument("--workers", type=int, default=1, help="worker processes sharing the study (joblib, loky)")
    p.add_argument("--cluster", help="run the --workers on a Dask cluster: its scheduler address (tcp://host:8786)")
    p.add_argument("--fp-cost", type=float, default=1.0,
                   help="cost of returning a wrong answer the verifier accepted, in units of a right one (for the optimal-samples advice)")
    p.set_defaults(func=cmd_optimize)


def build(args: argparse.Namespace):
    """Everything a worker needs, from the command's arguments (each worker process calls this)."""
    from .llm.cache import CallCache
    from .llm.client import LLMClient
    from .llm.local import local_slots
    from .llm.shared_budget import SharedBudget
    from .objectives import load_objective
    from .search import SearchSettings
    from .space import SearchSpace
    from .tasks.task import Task

    exp = Experiment(args.experiment or default_experiment())
    cfg = exp.config
    task = Task(exp.path(cfg.task))
    space = SearchSpace(args.space or exp.path(cfg.space))
    objective = load_objective(args.objective or exp.path(cfg.objective))
    out = Path(args.out) if args.out else exp.out_dir
    out.mkdir(parents=True, exist_ok=True)
    study = args.study or cfg.study or f"{exp.dir.name}-{space.name}-{objective.name}"
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
    return exp, settings, client, cache_url


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
    from .errors import BudgetExhausted
    from .report import export, front_table, plot_front, visible_test_rates, write_json
    from .search import Search, open_study

    exp, settings, client, cache_url = build(args)
    task, space, objective, out, study = settings.task, settings.space, settings.objective, settings.out_dir, settings.study_name
    console = Console(stderr=True)
    console.print(f"[bold]archsearch optimize[/] {exp.dir} — space {space.name}, objective {objective.name}, "
                  f"study {study}, cache {cache_url}")

    def status(info=None) -> Text:
        s = client.stats
        done = info["finished"] if info else 0
        last = ""
        if info:
            front = search.front()
            pick = max if objective.metrics[0].direction == "maximize" else min
            best = pick((t.values[0] for t in front), default=float("nan"))
            last = f" | front {len(front)} pipelines, best {objective.metrics[0].name} {best:.3f}"
        return Text(f"trials {done}/{settings.trials} | paid calls {s.calls} | cache hits {s.cache_hits} | "
                    f"${s.usd:.4f} spent | retries {s.retries} | failed calls {s.failures}{last}")

    search = Search(settings, client)
    if args.workers > 1:
        results = _run_workers(args, settings, console)
        for r in results:
            console.print(f"worker {r['worker']}: {len(r['trials'])} trials, {r['stats']['calls']} paid calls, "
                          f"{r['stats']['cache_hits']} cache hits" + (f", stopped: {r['stopped']}" if r["stopped"] else ""))
            search.stopped = search.stopped or r["stopped"]
        search.study = open_study(settings)
    else:
        with Live(status(), console=console, refresh_per_second=4, transient=False) as live:
            search.on_progress = lambda info: live.update(status(info))
            search.run()
    if search.stopped:
        console.print(f"[yellow]stopped early:[/] {search.stopped}")
    if not search.front():
        console.print("[red]no pipeline completed; nothing to report[/]")
        return 1
    chosen = search.choose()
    console = Console(width=max(Console().width, 150))
    console.print(front_table(search, chosen.number if chosen else None))
    plot_front(search, out / "front.png")
    failures = [{"trial": t.number, "state": t.state.name, "failure": t.user_attrs.get("failure"),
                 "failed_questions": t.user_attrs.get("failed_questions", []),
                 "retried_questions": t.user_attrs.get("retried_questions", [])}
                for t in search.study.trials if t.user_attrs.get("failure") or t.user_attrs.get("failed_questions")
                or t.user_attrs.get("retried_questions")]
    if failures or client.stats.failures:
        console.print(f"[yellow]{client.stats.failures} calls failed after every retry "
                      f"(attempt errors: {client.stats.errors}); {len(failures)} trials had failures — see report.json")
    summary = {"study": study, "storage": settings.storage, "cache": cache_url, "stopped": search.stopped,
               "client": client.stats.as_dict(), "failures": failures,
               "front": [{"trial": t.number, "values": t.values, "search": t.user_attrs.get("search")} for t in search.front()]}
    if chosen is None:
        console.print("no Pareto pipeline meets the objective's constraints; nothing exported")
        write_json(out / "report.json", summary)
        return 1
    spec = search.spec_of(chosen)
    extra = {}
    rates = visible_test_rates(search, spec) if any(layer.kind == "test" for layer in spec.layers) else None
    if rates:
        extra = {"visible_tests_tpr": rates.tpr, "visible_tests_fpr": rates.fpr,
                 "visible_tests_precision": rates.precision, "visible_tests_false_passes": float(rates.false_pos),
                 "visible_tests_samples": float(rates.samples)}
        console.print(f"visible tests as a verifier on {rates.samples} pooled samples: TPR {rates.tpr:.2f}, "
                      f"FPR {rates.fpr:.2f}, precision {rates.precision:.2f} — {rates.false_pos} programs passed the "
                      f"visible tests but fail the hidden ones")
    extra.update(_bayes_report(search, chosen, spec, args.fp_cost, console))
    path = out / "pipeline.yaml"
    try:
        test_m = search.evaluate(spec, task.split("test"), "test").measured()
    except BudgetExhausted as exc:  # the cap holds for the held-out check too: export, say so, stop
        export(search, chosen, None, path, extra)
        console.print(f"[yellow]held-out evaluation skipped: {exc}[/]; wrote {path} with its search score only. "
                      f"Run `archsearch evaluate {path} --split test` when there is budget.")
        summary.update(chosen=chosen.number, test=None, verifier=extra, client=client.stats.as_dict())
        write_json(out / "report.json", summary)
        return 0
    export(search, chosen, test_m, path, extra)
    console.print(f"chosen: trial {chosen.number} — search accuracy {chosen.user_attrs['search']['accuracy']:.3f}, "
                  f"held-out test accuracy {test_m.accuracy:.3f} [{test_m.accuracy_low:.2f}, {test_m.accuracy_high:.2f}] "
                  f"on {test_m.questions} questions")
    console.print(f"wrote {path}, {out / 'front.png'}, {out / 'report.json'}")
    summary.update(chosen=chosen.number, test=test_m.model_dump(), verifier=extra, client=client.stats.as_dict())
    write_json(out / "report.json", summary)
    return 0


def _bayes_report(search, chosen, spec, fp_cost: float, console) -> dict[str, float]:
    """Posterior accuracy with 90% intervals beside the raw scores, and the verifier's rates."""
    from rich.table import Table

    from .bayes.sampler import SurrogateSampler
    from .bayes.summary import believe, new_questions_belief, verifier_belief
    from .report import describe

    sampler = search.sampler
    if sampler is None:
        sampler = SurrogateSampler(search.settings.space, search.settings.task, search.records, search.settings.objective,
                                   search.client.cache, search.sandbox_memo, seed=search.settings.seed)
    front = search.front()
    beliefs = believe(sampler, [search.spec_of(t) for t in front])
    if beliefs is None:
        console.print("surrogate: this space has layers the model does not cover; no posterior intervals")
        return {}
    post = sampler.last_posterior
    table = Table(title=f"Posterior accuracy (NumPyro, {post.method}, {post.seconds:.1f}s"
                        + (f"; {'; '.join(post.warnings)}" if post.warnings else "") + ")")
    for col in ("trial", "pipeline", "search score", "posterior mean [90% interval]"):
        table.add_column(col)
    for i, t in enumerate(front):
        b = beliefs[i]
        table.add_row(str(t.number), describe(search.spec_of(t)), f"{t.user_attrs['search']['accuracy']:.3f}",
                      f"{b.mean:.3f} [{b.low:.3f}, {b.high:.3f}]")
    console.print(table)
    chosen_belief = beliefs[[t.number for t in front].index(chosen.number)]
    extra = {"posterior_accuracy": chosen_belief.mean, "posterior_accuracy_low90": chosen_belief.low,
             "posterior_accuracy_high90": chosen_belief.high}
    fresh = new_questions_belief(sampler, spec, len(search.settings.task.split("test")))
    if fresh is not None:
        console.print(f"expected on {len(search.settings.task.split('test'))} new questions (the held-out split): "
                      f"{fresh.mean:.3f} [{fresh.low:.3f}, {fresh.high:.3f}] (90%)")
        extra.update({"predicted_heldout_accuracy": fresh.mean, "predicted_heldout_low90": fresh.low,
                      "predicted_heldout_high90": fresh.high})
    v = verifier_belief(sampler, spec, fp_cost)
    if v is not None:
        console.print(f"verifier (visible tests), posterior: TPR {v.tpr[0]:.2f} [{v.tpr[1]:.2f}, {v.tpr[2]:.2f}], "
                      f"FPR {v.fpr[0]:.2f} [{v.fpr[1]:.2f}, {v.fpr[2]:.2f}]; resampling until accepted tops out at "
                      f"{v.ceiling[0]:.3f} [{v.ceiling[1]:.3f}, {v.ceiling[2]:.3f}]; with a false positive costing "
                      f"{fp_cost:g}x a right answer, the best number of samples is {v.best_k}")
        extra.update({"verifier_tpr": v.tpr[0], "verifier_tpr_low90": v.tpr[1], "verifier_tpr_high90": v.tpr[2],
                      "verifier_fpr": v.fpr[0], "verifier_fpr_low90": v.fpr[1], "verifier_fpr_high90": v.fpr[2],
                      "resampling_ceiling": v.ceiling[0], "resampling_ceiling_low90": v.ceiling[1],
                      "resampling_ceiling_high90": v.ceiling[2], "optimal_samples": float(v.best_k),
                      "fp_cost": fp_cost})
    return extra
