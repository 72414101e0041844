"""The study loop of ``archsearch optimize``: ask the sampler for a pipeline, score it on growing rungs
of the search split (successive halving), record it, until the trials or the budget run out.
Several workers may share one study (storage, call cache and budget)."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from ..errors import ArchsearchError, BudgetExhausted
from ..evaluate import EvalReport, aevaluate, trace_record
from ..llm.budget import Budget
from ..llm.cache import CallCache
from ..llm.client import LLMClient
from ..objectives import Objective
from ..pipeline import Pipeline
from ..sandbox import RecordedRuns
from ..space import SearchSpace, spec_fingerprint
from ..spec import Measured, PipelineSpec, dump_spec
from ..tasks.task import Task
from . import records
from .records import TrialRecord
from .study import fail_orphans, feasible, make_storage, open_study, report_rung

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


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


class Search:
    """One worker of a search. Several workers may share a storage (see the README, Scaling out)."""

    def __init__(self, settings: SearchSettings, client: LLMClient,
                 on_progress: Callable[[dict[str, Any]], None] | None = None, surrogate=None) -> None:
        """``surrogate``: a ``bayes.fit.Surrogate`` to fit with (its compiled code is kept per shape,
        so searches that share one compile once); None: the sampler makes its own."""
        self.settings = settings
        self.surrogate = surrogate
        self.client = client
        self.on_progress = on_progress
        self.sandbox_memo: dict = RecordedRuns(client.cache) if isinstance(client.cache, CallCache) else {}
        self.records = settings.task.split("search")
        self.study: optuna.Study | None = None
        self.storage: optuna.storages.BaseStorage | None = None
        self.sampler = None
        self.stopped: str = ""

    # -- evaluation --------------------------------------------------------------------------
    def evaluate(self, spec: PipelineSpec, records_, split: str) -> EvalReport:
        pipe = Pipeline(spec, self.client, sandbox_memo=self.sandbox_memo)
        return asyncio.run(self._evaluate(pipe, records_, split))

    def trace(self, spec: PipelineSpec, records_) -> list[dict]:
        """These questions answered by ``spec`` layer by layer (``evaluate.trace_record``)."""
        pipe = Pipeline(spec, self.client, sandbox_memo=self.sandbox_memo)

        async def run() -> list[dict]:
            try:
                return [await trace_record(pipe, self.settings.task, r) for r in records_]
            finally:
                await self.client.release_loop()
        return asyncio.run(run())

    async def _evaluate(self, pipe: Pipeline, records_, split: str) -> EvalReport:
        try:
            return await aevaluate(pipe, self.settings.task, records_, split, concurrency=self.settings.concurrency)
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

    def trial_records(self, states=FINISHED) -> list[TrialRecord]:
        return [TrialRecord.of(t) for t in self.study.get_trials(deepcopy=False, states=states)]

    def _should_prune(self, number: int, size: int, m: Measured) -> bool:
        """Successive halving at this rung: the trial goes on if its accuracy is among the top
        1/reduction_factor of every trial's at this rung; else it stops, but only when a finished
        trial also beats it there by ``margin`` at no more calls (a cheap, less accurate pipeline
        can still be on the front)."""
        h = self.settings.objective.halving
        others = [r.rung(size) for r in self.trial_records() if r.number != number and r.rung(size)]
        if not others:
            return False
        values = sorted([o.accuracy for o in others] + [m.accuracy], reverse=True)
        dominated = any(o.accuracy > m.accuracy + h.margin and o.calls_per_question <= m.calls_per_question
                        for o in others)
        return m.accuracy < values[max(1, len(values) // h.reduction_factor) - 1] and dominated

    def _evaluate_in_rungs(self, trial: optuna.Trial, spec: PipelineSpec) -> tuple[EvalReport, bool]:
        """Score on growing rungs; each rung's accuracy is the trial's intermediate value at step =
        questions scored, so Optuna's tools (optuna-dashboard) show the halving."""
        report, done, rungs = EvalReport("search"), 0, {}
        sizes = self.rung_sizes()
        # the surrogate chose it for its whole-split outcome, replayed from the cache: a rung's
        # smaller sample must not overrule that, and stopping it would save no call
        known = self.sampler is not None and self.sampler.knew(trial.number, spec_fingerprint(spec))
        for size in sizes:
            report.outcomes += self.evaluate(spec, self.records[done:size], "search").outcomes
            done = size
            if not report.scored:
                continue
            m = report.measured()
            rungs[size] = m
            records.write_rungs(trial, rungs)
            report_rung(self.storage, self.settings.study_name, trial.number, size, m.accuracy)
            if size < sizes[-1] and not known and self._should_prune(trial.number, size, m):
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

    # -- one trial -------------------------------------------------------------------------------
    def run_trial(self) -> TrialOutcome:
        trial = self.study.ask()
        records.started_by(trial, socket.gethostname(), os.getpid())
        try:
            spec = self.settings.space.build(trial, self.settings.task)
        except ArchsearchError as exc:
            self.study.tell(trial, state=TrialState.FAIL)
            return TrialOutcome(trial.number, "FAIL", None, None, reason=str(exc))
        fp = spec_fingerprint(spec)
        records.claim(trial, fp, dump_spec(spec))   # other workers' samplers skip it from now on
        if self._running_elsewhere(trial.number, fp):
            records.write_failure(trial, "the same pipeline is running in another worker")
            self.study.tell(trial, state=TrialState.FAIL)
            return TrialOutcome(trial.number, "DUPLICATE", spec, None, reason="running in another worker")
        previous = next((t for t in self.study.get_trials(deepcopy=False, states=FINISHED)
                         if t.user_attrs.get(records.FINGERPRINT) == fp), None)
        if previous is not None:
            return self._reuse(trial, spec, previous)
        try:
            return self._score(trial, spec)
        except BudgetExhausted as exc:
            records.write_failure(trial, f"budget: {exc}")
            self.study.tell(trial, state=TrialState.FAIL)
            self.stopped = str(exc)
            return TrialOutcome(trial.number, "FAIL", spec, None, reason=str(exc))

    def _reuse(self, trial: optuna.Trial, spec: PipelineSpec, previous) -> TrialOutcome:
        """The same pipeline again: its first trial's result, for nothing."""
        records.copy_result(trial, previous)
        for name, value in previous.constraints.items():
            if not name.isdigit():
                trial.set_constraint(name, value)
        first = TrialRecord.of(previous)
        if previous.state == TrialState.COMPLETE:
            self.study.tell(trial, previous.values)
            return TrialOutcome(trial.number, "COMPLETE", spec, first.search)
        self.study.tell(trial, state=TrialState.PRUNED)
        return TrialOutcome(trial.number, "PRUNED", spec, None, first.last_rung)

    def _score(self, trial: optuna.Trial, spec: PipelineSpec) -> TrialOutcome:
        report, pruned = self._evaluate_in_rungs(trial, spec)
        records.write_non_call(trial, report.non_call_times())
        if pruned:
            self._record_failures(trial, report)
            self._set_constraints(trial, report.measured() if report.scored else None, len(report.failures))
            self.study.tell(trial, state=TrialState.PRUNED)
            return TrialOutcome(trial.number, "PRUNED", spec, None, report.measured())
        if report.failures:
            records.write_retried(trial, [f"{o.id}: {o.error}" for o in report.failures])
            report = self._retry_failed(spec, report)
        self._record_failures(trial, report)
        if not report.scored:
            self.study.tell(trial, state=TrialState.FAIL)
            return TrialOutcome(trial.number, "FAIL", spec, None, reason="every question failed")
        measured = report.measured()
        records.write_result(trial, measured, len(report.failures))   # incomplete: infeasible, never on the front
        self._set_constraints(trial, measured, len(report.failures))
        self.study.tell(trial, self.settings.objective.values(measured))
        return TrialOutcome(trial.number, "COMPLETE", spec, measured, TrialRecord.of(trial).last_rung)

    def _running_elsewhere(self, number: int, fp: str) -> bool:
        """Another trial still running (another worker's) has claimed this pipeline. Either may have
        claimed first: each claims, then looks, so at most one of two racing trials runs it (when
        both claimed before either looked, neither does, and the pipeline stays free for later)."""
        return any(r.number != number and r.fingerprint == fp for r in self.trial_records((TrialState.RUNNING,)))

    @staticmethod
    def _record_failures(trial, report: EvalReport) -> None:
        """Questions whose calls failed after every retry: kept visible, never scored as wrong."""
        if report.failures:
            records.add_failed_questions(trial, [f"{o.id}: {o.error}" for o in report.failures])

    # -- the loop ----------------------------------------------------------------------------------
    def _surrogate_sampler(self):
        from .sampler import SurrogateSampler

        if self.client.cache is None:
            raise ArchsearchError("the surrogate sampler learns from the call cache: give the search one")
        self.sampler = SurrogateSampler(self.settings.space, self.settings.task, self.records, self.settings.objective,
                                        self.client.cache, self.sandbox_memo, seed=self.settings.seed,
                                        surrogate=self.surrogate)
        return self.sampler

    def finished(self) -> int:
        return len(self.study.get_trials(deepcopy=False, states=FINISHED))

    def _enqueue_baseline(self) -> None:
        """The space's cheapest pipeline runs first: the baseline every choice must beat."""
        params, spec = self.settings.space.baseline(self.settings.task)
        trials = self.study.get_trials(deepcopy=False)
        if not any(t.user_attrs.get(records.FINGERPRINT) == spec_fingerprint(spec) for t in trials) and not any(
                t.state == TrialState.WAITING for t in trials):
            self.study.enqueue_trial(params, skip_if_exists=True)

    def open(self) -> None:
        s = self.settings
        sampler = self._surrogate_sampler() if s.sampler == "surrogate" else None   # (slow imports: before the storage)
        self.storage = make_storage(s.storage)
        self.study = open_study(s, sampler, self.storage)

    def run(self) -> list[TrialOutcome]:
        s = self.settings
        self.open()
        fail_orphans(self.study)
        if s.sampler != "surrogate":   # the surrogate probes each model with the pipeline whose samples most
            self._enqueue_baseline()   # others reuse, and predicts the baseline (starting with it cost calls)
        self.client.budget = s.budget
        deadline = time.monotonic() + s.wall_minutes * 60 if s.wall_minutes else None
        outcomes = []
        try:
            while self.finished() < s.trials and not self.stopped:
                if deadline and time.monotonic() > deadline:
                    self.stopped = f"wall-time budget of {s.wall_minutes:g} min reached"
                    break
                outcome = self.run_trial()
                outcomes.append(outcome)
                if self.on_progress:
                    self.on_progress({"finished": self.finished(), "trials": s.trials, "outcome": outcome,
                                      "stats": self.client.stats})
        finally:
            if self.sampler is not None:
                self.sampler.close()   # a refit still running for proposals that will not come
        return outcomes

    # -- the result ----------------------------------------------------------------------------
    def front(self) -> list[optuna.trial.FrozenTrial]:
        """The Pareto-optimal trials, one per point: of the pipelines that score the same on every
        objective (a pipeline proposed twice; greedy with or without a vote over its one sample),
        the one with the fewest layers, then the first tried."""
        points: dict[tuple, list[optuna.trial.FrozenTrial]] = {}
        for t in self.study.best_trials:
            points.setdefault((tuple(t.values), feasible(t)), []).append(t)
        # a spec is read only to break a tie: the front is asked for after every trial
        first = [min(tied, key=lambda t: (len(self.spec_of(t).layers), t.number)) if len(tied) > 1 else tied[0]
                 for tied in points.values()]
        return sorted(first, key=lambda t: (-t.values[0], t.number))

    def spec_of(self, trial) -> PipelineSpec:
        return TrialRecord.of(trial).spec(self.settings.study_name)
