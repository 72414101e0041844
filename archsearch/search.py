"""``archsearch optimize``: multi-objective Optuna search over a space, with shared sample pools,
successive halving, a hard budget, resume, and a frozen export of the chosen pipeline."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import optuna
from optuna.trial import TrialState

from .errors import ArchsearchError, BudgetExhausted
from .evaluate import EvalReport, aevaluate
from .llm.budget import Budget
from .llm.client import LLMClient
from .objectives import Objective
from .pipeline import Pipeline
from .space import SearchSpace, spec_fingerprint
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
    sampler: str = "tpe"
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
    rung0: Measured | None = None
    reason: str = ""


def make_sampler(name: str, seed: int) -> optuna.samplers.BaseSampler:
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, n_startup_trials=8)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=8)
    raise ArchsearchError(f"unknown sampler {name!r} (expected one of: surrogate, tpe, random, nsga2)")


def open_study(settings: SearchSettings, sampler: optuna.samplers.BaseSampler | None = None) -> optuna.Study:
    storage: Any = settings.storage
    if storage.startswith(("sqlite:", "postgresql", "mysql")):
        storage = _rdb_storage(storage)
    elif storage.endswith(".log") or storage.startswith("journal:"):
        path = storage.removeprefix("journal:")
        storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(path))
    return optuna.create_study(storage=storage, study_name=settings.study_name, load_if_exists=True,
                               directions=settings.objective.directions,
                               sampler=sampler or make_sampler(settings.sampler, settings.seed))


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

    def _promising(self, rung0: Measured) -> bool:
        """Not dominated, by more than the margin, by a finished trial's rung-0 score at no more calls."""
        margin = self.settings.objective.halving.margin
        for t in self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)):
            other = measured_from_attrs(t.user_attrs, "rung0")
            if other and other.accuracy > rung0.accuracy + margin and other.calls_per_question <= rung0.calls_per_question:
                return False
        return True

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
        trial.set_user_attr("fingerprint", fp)
        trial.set_user_attr("spec", dump_spec(spec))
        previous = self._known().get(fp)
        if previous is not None:  # the same pipeline again: reuse its result, spend nothing
            for key in ("rung0", "search"):
                if key in previous.user_attrs:
                    trial.set_user_attr(key, previous.user_attrs[key])
            trial.set_user_attr("duplicate_of", previous.number)
            if previous.state == TrialState.COMPLETE:
                study.tell(trial, previous.values)
                return TrialOutcome(trial.number, "COMPLETE", spec, measured_from_attrs(previous.user_attrs, "search"))
            study.tell(trial, state=TrialState.PRUNED)
            return TrialOutcome(trial.number, "PRUNED", spec, None, measured_from_attrs(previous.user_attrs, "rung0"))
        try:
            first = self.records[: s.objective.halving.first_rung]
            rung0_report = self.evaluate(spec, first, "search")
            self._record_failures(trial, rung0_report)
            rung0 = rung0_report.measured()
            trial.set_user_attr("rung0", rung0.model_dump())
            if len(first) < len(self.records) and not self._promising(rung0):
                study.tell(trial, state=TrialState.PRUNED)
                return TrialOutcome(trial.number, "PRUNED", spec, None, rung0)
            report = self.evaluate(spec, self.records, "search")
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
        study.tell(trial, s.objective.values(measured))
        return TrialOutcome(trial.number, "COMPLETE", spec, measured, rung0)

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

    def run(self) -> list[TrialOutcome]:
        s = self.settings
        self.study = open_study(s, self._surrogate_sampler() if s.sampler == "surrogate" else None)
        _fail_orphans(self.study)
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
