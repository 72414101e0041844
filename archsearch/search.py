"""``archsearch optimize``: multi-objective Optuna search over a space, with shared sample pools,
successive halving, a hard budget, resume, and a frozen export of the chosen pipeline."""

from __future__ import annotations

import asyncio
import os
import socket
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from .bayes.tpe import RungAwareTPE
from .errors import ArchsearchError, BudgetExhausted
from .evaluate import EvalReport, aevaluate
from .llm.budget import Budget
from .llm.client import LLMClient
from .objectives import Objective
from .pipeline import Pipeline
from .space import SearchSpace, enumerate_space, spec_fingerprint
from .spec import Measured, PipelineSpec, dump_spec, loads_spec
from .tasks.task import Task

optuna.logging.set_verbosity(optuna.logging.WARNING)


@dataclass
class SearchSettings:
    task: Task
    space: SearchSpace
    objective: Objective
    trials: int
    storage: str
    study_name: str
    out_dir: Path
    sampler: str = "surrogate"
    seed: int = 0
    concurrency: int = 32
    budget: Budget = field(default_factory=Budget)
    wall_minutes: float | None = None


@dataclass
class TrialOutcome:
    number: int
    state: str
    spec: PipelineSpec | None
    search: Measured | None
    rung: Measured | None = None   # the last rung reached (a pruned trial's score)
    reason: str = ""


SAMPLERS = ("surrogate", "tpe", "random", "nsga2")


def make_sampler(name: str, seed: int) -> optuna.samplers.BaseSampler:
    """Constraints reach every sampler as Trial.set_constraint values (Optuna 5's replacement for
    constraints_func): the samplers and ``study.best_trials`` see the feasible front. (The surrogate
    sampler needs the search's task and cache: ``Search`` builds it.)"""
    if name == "tpe":
        return RungAwareTPE(seed=seed, multivariate=True, n_startup_trials=8)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=8)
    raise ArchsearchError(f"unknown sampler {name!r} (expected one of: surrogate, tpe, random, nsga2)")


def make_storage(url: str) -> optuna.storages.BaseStorage:
    """The study's storage, built here so the search can use its public API (a multi-objective
    trial's rung values are stored through it)."""
    if url.startswith(("sqlite:", "postgresql", "mysql")):
        return _rdb_storage(url)
    if url.endswith(".log") or url.startswith("journal:"):
        path = url.removeprefix("journal:")
        return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(path))
    if url in ("", ":memory:"):
        return optuna.storages.InMemoryStorage()
    raise ArchsearchError(f"storage {url!r}: expected a SQLAlchemy URL (sqlite:///..., postgresql://...), "
                          "a journal file (journal:PATH or PATH.log) or :memory:")


def open_study(settings: SearchSettings, sampler: optuna.samplers.BaseSampler | None = None,
               storage: optuna.storages.BaseStorage | None = None) -> optuna.Study:
    """Create or load the study; its metric names are the objective's, for Optuna's tools."""
    storage = storage or make_storage(settings.storage)
    study = optuna.create_study(storage=storage, study_name=settings.study_name, load_if_exists=True,
                                directions=settings.objective.directions,
                                sampler=sampler or make_sampler("tpe" if settings.sampler == "surrogate" else settings.sampler,
                                                                settings.seed))
    names = [m.name for m in settings.objective.metrics]
    if study.metric_names != names:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(names)
    return study


def _rdb_storage(url: str, attempts: int = 6) -> optuna.storages.RDBStorage:
    """Workers starting together race to create Optuna's schema; the loser retries."""
    from sqlalchemy.exc import SQLAlchemyError

    for attempt in range(attempts):
        try:
            return optuna.storages.RDBStorage(url)
        except SQLAlchemyError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.3 * (attempt + 1))
    raise AssertionError("unreachable")


def _fail_orphans(study: optuna.Study) -> int:
    """RUNNING trials left by a killed process on this host are failed so they do not linger."""
    host, failed = socket.gethostname(), 0
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        pid = t.user_attrs.get("pid")
        if t.user_attrs.get("host") == host and pid and not _alive(pid):
            try:
                study.tell(t.number, state=TrialState.FAIL)
                failed += 1
            except Exception:  # another worker got there first
                pass
    return failed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def measured_from_attrs(attrs: dict, key: str) -> Measured | None:
    raw = attrs.get(key)
    return Measured.model_validate(raw) if raw else None


def last_rung(trial) -> Measured | None:
    """What a trial measured on the largest rung it reached (a pruned trial's score)."""
    rungs = trial.user_attrs.get("rungs") or {}
    return Measured.model_validate(rungs[max(rungs, key=int)]) if rungs else None


class Search:
    """One worker of a search. Several workers may share a storage (see the README, Scaling out)."""

    def __init__(self, settings: SearchSettings, client: LLMClient,
                 on_progress: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.settings = settings
        self.client = client
        self.on_progress = on_progress
        self.sandbox_memo: dict = {}
        self.records = settings.task.split("search")
        self.study: optuna.Study | None = None
        self.storage: optuna.storages.BaseStorage | None = None
        self.sampler = None
        self.stopped: str = ""

    # -- evaluation --------------------------------------------------------------------------
    def evaluate(self, spec: PipelineSpec, records, split: str) -> EvalReport:
        pipe = Pipeline(spec, self.client, sandbox_memo=self.sandbox_memo)
        return asyncio.run(self._evaluate(pipe, records, split))

    async def _evaluate(self, pipe: Pipeline, records, split: str) -> EvalReport:
        try:
            return await aevaluate(pipe, self.settings.task, records, split, concurrency=self.settings.concurrency)
        finally:
            await self.client.release_loop()

    def rung_sizes(self) -> list[int]:
        """Questions scored at each rung: first_rung, times reduction_factor, ..., the whole split."""
        h, total = self.settings.objective.halving, len(self.records)
        sizes, size = [], h.first_rung
        while size < total:
            sizes.append(size)
            size *= h.reduction_factor
        return sizes + [total]

    def _dominated(self, size: int, m: Measured) -> bool:
        """A finished trial beat this one at the same rung by more than the margin, at no more calls."""
        margin = self.settings.objective.halving.margin
        for t in self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)):
            other = (t.user_attrs.get("rungs") or {}).get(str(size))
            if other and other["accuracy"] > m.accuracy + margin and other["calls_per_question"] <= m.calls_per_question:
                return True
        return False

    def _should_prune(self, trial: optuna.Trial, size: int, m: Measured) -> bool:
        """Successive halving at this rung: the trial goes on if its accuracy is among the top
        1/reduction_factor of every trial's at this rung; else it stops, but only when a finished
        trial also beats it there by the margin at no more calls (``_dominated``)."""
        key = str(size)
        values = [t.user_attrs["rungs"][key]["accuracy"]
                  for t in self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
                  if t.number != trial.number and key in (t.user_attrs.get("rungs") or {})]
        if not values:
            return False
        values = sorted(values + [m.accuracy], reverse=True)
        keep = max(1, len(values) // self.settings.objective.halving.reduction_factor)
        return m.accuracy < values[keep - 1] and self._dominated(size, m)

    def _report_rung(self, trial: optuna.Trial, size: int, accuracy: float) -> None:
        """Trial.report refuses multi-objective studies; the storage's public API records the same
        value, so optuna-dashboard shows the rungs."""
        study_id = self.storage.get_study_id_from_name(self.settings.study_name)
        trial_id = self.storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
        self.storage.set_trial_intermediate_value(trial_id, size, accuracy)

    def _evaluate_in_rungs(self, trial: optuna.Trial, spec: PipelineSpec) -> tuple[EvalReport, bool]:
        """Score on growing rungs; each rung's accuracy is the trial's intermediate value at step =
        questions scored, so Optuna's tools (optuna-dashboard) show the halving."""
        report, done, rungs = EvalReport("search"), 0, {}
        sizes = self.rung_sizes()
        for size in sizes:
            report.outcomes += self.evaluate(spec, self.records[done:size], "search").outcomes
            done = size
            if not report.scored:
                continue
            m = report.measured()
            rungs[str(size)] = m.model_dump()
            trial.set_user_attr("rungs", rungs)
            self._report_rung(trial, size, m.accuracy)
            if size < sizes[-1] and self._should_prune(trial, size, m):
                return report, True
        return report, False

    def _retry_failed(self, spec: PipelineSpec, report: EvalReport) -> EvalReport:
        """Questions lost to provider failures get one more try at the end of the trial (the cache
        makes the calls that did succeed free)."""
        failed = {o.id for o in report.failures}
        if not failed:
            return report
        again = self.evaluate(spec, [r for r in self.records if r.id in failed], "search")
        redone = {o.id: o for o in again.outcomes}
        return EvalReport(report.split, [redone.get(o.id, o) for o in report.outcomes])

    def _set_constraints(self, trial: optuna.Trial, measured: Measured | None, unscored: int) -> None:
        for name, value in (self.settings.objective.violations(measured) if measured else {}).items():
            trial.set_constraint(name, value)
        trial.set_constraint("unscored_questions", float(unscored))

    def _known(self) -> dict[str, Any]:
        known = {}
        for t in self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)):
            known.setdefault(t.user_attrs.get("fingerprint"), t)
        return known

    def run_trial(self) -> TrialOutcome:
        s, study = self.settings, self.study
        trial = study.ask()
        trial.set_user_attr("host", socket.gethostname())
        trial.set_user_attr("pid", os.getpid())
        try:
            spec = s.space.build(trial, s.task)
        except ArchsearchError as exc:
            study.tell(trial, state=TrialState.FAIL)
            return TrialOutcome(trial.number, "FAIL", None, None, reason=str(exc))
        fp = spec_fingerprint(spec)
        trial.set_user_attr("fingerprint", fp)   # the claim: other workers' samplers skip it from now on
        trial.set_user_attr("spec", dump_spec(spec))
        if self._running_elsewhere(trial.number, fp):
            trial.set_user_attr("failure", "the same pipeline is running in another worker")
            study.tell(trial, state=TrialState.FAIL)
            return TrialOutcome(trial.number, "DUPLICATE", spec, None, reason="running in another worker")
        previous = self._known().get(fp)
        if previous is not None:  # the same pipeline again: reuse its result, spend nothing
            for key in ("rungs", "search", "unscored", "failed_questions"):
                if key in previous.user_attrs:
                    trial.set_user_attr(key, previous.user_attrs[key])
            trial.set_user_attr("duplicate_of", previous.number)
            for name, value in previous.constraints.items():
                if not name.isdigit():
                    trial.set_constraint(name, value)
            if previous.state == TrialState.COMPLETE:
                study.tell(trial, previous.values)
                return TrialOutcome(trial.number, "COMPLETE", spec, measured_from_attrs(previous.user_attrs, "search"))
            study.tell(trial, state=TrialState.PRUNED)
            return TrialOutcome(trial.number, "PRUNED", spec, None, last_rung(previous))
        try:
            report, pruned = self._evaluate_in_rungs(trial, spec)
            if pruned:
                self._record_failures(trial, report)
                self._set_constraints(trial, report.measured() if report.scored else None, len(report.failures))
                study.tell(trial, state=TrialState.PRUNED)
                return TrialOutcome(trial.number, "PRUNED", spec, None, report.measured())
            if report.failures:
                trial.set_user_attr("retried_questions", [f"{o.id}: {o.error}" for o in report.failures][:50])
                report = self._retry_failed(spec, report)
        except BudgetExhausted as exc:
            trial.set_user_attr("failure", f"budget: {exc}")
            study.tell(trial, state=TrialState.FAIL)
            self.stopped = str(exc)
            return TrialOutcome(trial.number, "FAIL", spec, None, reason=str(exc))
        self._record_failures(trial, report)
        if not report.scored:
            study.tell(trial, state=TrialState.FAIL)
            return TrialOutcome(trial.number, "FAIL", spec, None, reason="every question failed")
        measured = report.measured()
        trial.set_user_attr("search", measured.model_dump())
        trial.set_user_attr("unscored", len(report.failures))  # incomplete: infeasible, never on the front
        self._set_constraints(trial, measured, len(report.failures))
        study.tell(trial, s.objective.values(measured))
        return TrialOutcome(trial.number, "COMPLETE", spec, measured, last_rung(trial))

    def _running_elsewhere(self, number: int, fp: str) -> bool:
        """An earlier trial still running (another worker's) claimed this pipeline first."""
        return any(t.number < number and t.user_attrs.get("fingerprint") == fp
                   for t in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))

    @staticmethod
    def _record_failures(trial, report: EvalReport) -> None:
        """Questions whose calls failed after every retry: kept visible, never scored as wrong."""
        if report.failures:
            seen = list(trial.user_attrs.get("failed_questions", []))
            seen += [f"{o.id}: {o.error}" for o in report.failures]
            trial.set_user_attr("failed_questions", seen[:50])

    def _surrogate_sampler(self):
        from .bayes.sampler import SurrogateSampler

        if self.client.cache is None:
            raise ArchsearchError("the surrogate sampler learns from the call cache: give the search one")
        self.sampler = SurrogateSampler(self.settings.space, self.settings.task, self.records, self.settings.objective,
                                        self.client.cache, self.sandbox_memo, seed=self.settings.seed)
        return self.sampler

    def finished(self) -> int:
        return len(self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))

    def _enqueue_baseline(self) -> None:
        """The space's cheapest pipeline runs first: the baseline every choice must beat."""
        from .selection import cheapest

        pipelines = enumerate_space(self.settings.space, self.settings.task)
        params, spec = pipelines[cheapest([s for _, s in pipelines])]
        fp = spec_fingerprint(spec)
        trials = self.study.get_trials(deepcopy=False)
        if not any(t.user_attrs.get("fingerprint") == fp for t in trials) and not any(
                t.state == TrialState.WAITING for t in trials):
            self.study.enqueue_trial(params, skip_if_exists=True)

    def run(self) -> list[TrialOutcome]:
        s = self.settings
        sampler = self._surrogate_sampler() if s.sampler == "surrogate" else None   # (slow imports: before the storage)
        self.storage = make_storage(s.storage)
        self.study = open_study(s, sampler, self.storage)
        _fail_orphans(self.study)
        if s.sampler != "surrogate":  # the surrogate sampler's probes start with it anyway
            self._enqueue_baseline()
        self.client.budget = s.budget
        deadline = time.monotonic() + s.wall_minutes * 60 if s.wall_minutes else None
        outcomes = []
        while self.finished() < s.trials and not self.stopped:
            if deadline and time.monotonic() > deadline:
                self.stopped = f"wall-time budget of {s.wall_minutes:g} min reached"
                break
            outcome = self.run_trial()
            outcomes.append(outcome)
            if self.on_progress:
                self.on_progress({"finished": self.finished(), "trials": s.trials, "outcome": outcome,
                                  "stats": self.client.stats})
        return outcomes

    # -- the result ----------------------------------------------------------------------------
    def front(self) -> list[optuna.trial.FrozenTrial]:
        """The Pareto-optimal trials, one per distinct pipeline (a sampler may propose one twice)."""
        first: dict[str, optuna.trial.FrozenTrial] = {}
        for t in sorted(self.study.best_trials, key=lambda t: t.number):
            first.setdefault(t.user_attrs.get("fingerprint", str(t.number)), t)
        return sorted(first.values(), key=lambda t: -t.values[0])

    def choose(self) -> optuna.trial.FrozenTrial | None:
        """The objective's rule on raw search scores among the feasible front (what the export falls
        back to when the space has no posterior; conclude.py chooses by the posterior otherwise)."""
        obj = self.settings.objective
        feasible = [t for t in self.front() if obj.feasible(measured_from_attrs(t.user_attrs, "search"))]
        if not feasible:
            return None
        sel = obj.select
        key_name, sign = (sel.maximize, -1) if sel.maximize else (sel.minimize, 1)
        return min(feasible, key=lambda t: (sign * getattr(measured_from_attrs(t.user_attrs, "search"), key_name),
                                            getattr(measured_from_attrs(t.user_attrs, "search"), sel.tie_break)))

    def spec_of(self, trial: optuna.trial.FrozenTrial) -> PipelineSpec:
        return loads_spec(trial.user_attrs["spec"], f"study {self.settings.study_name} trial {trial.number}")
