"""A trial of an archsearch study as the search writes it and the rest reads it: the one place that
knows the names of its user attributes (Optuna stores them as plain JSON)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..spec import Measured, PipelineSpec, loads_spec

FINGERPRINT = "fingerprint"          # what the pipeline does (space.spec_fingerprint): the claim other workers see
SPEC = "spec"                        # the pipeline spec as YAML
RUNGS = "rungs"                      # {questions: Measured} per successive-halving rung
SEARCH = "search"                    # Measured on the whole search split
UNSCORED = "unscored"                # questions lost to provider failures (infeasible when > 0)
FAILED_QUESTIONS = "failed_questions"
RETRIED_QUESTIONS = "retried_questions"
FAILURE = "failure"                  # why the trial failed
DUPLICATE_OF = "duplicate_of"        # the trial whose result it reused
NON_CALL = "non_call_s"              # {layer place: seconds} of the layers that paid no call (the surrogate's)
HOST, PID = "host", "pid"            # who runs it (to fail the orphans of a killed worker)
THRESHOLDOUT = "thresholdout"        # a study attribute: the reusable holdout's state
COPIED = (RUNGS, SEARCH, UNSCORED, FAILED_QUESTIONS)   # what a duplicate takes over from the trial it repeats


@dataclass(frozen=True)
class TrialRecord:
    number: int
    state: str
    values: list[float] | None
    fingerprint: str | None
    spec_text: str | None
    search: Measured | None
    rungs: dict[int, Measured] = field(default_factory=dict)
    unscored: int = 0
    failed_questions: list[str] = field(default_factory=list)
    retried_questions: list[str] = field(default_factory=list)
    failure: str | None = None
    host: str | None = None
    pid: int | None = None
    non_call: dict[str, list[float]] = field(default_factory=dict)

    @classmethod
    def of(cls, trial) -> TrialRecord:
        """From an Optuna trial (frozen or live)."""
        attrs = trial.user_attrs
        state = getattr(trial, "state", None)
        return cls(trial.number, getattr(state, "name", "RUNNING"), list(trial.values) if getattr(trial, "values", None)
                   else None, attrs.get(FINGERPRINT), attrs.get(SPEC), measured(attrs.get(SEARCH)),
                   {int(k): Measured.model_validate(v) for k, v in (attrs.get(RUNGS) or {}).items()},
                   int(attrs.get(UNSCORED, 0)), list(attrs.get(FAILED_QUESTIONS, [])),
                   list(attrs.get(RETRIED_QUESTIONS, [])), attrs.get(FAILURE), attrs.get(HOST), attrs.get(PID),
                   dict(attrs.get(NON_CALL, {})))

    @property
    def last_rung(self) -> Measured | None:
        """What it measured on the largest rung it reached (a pruned trial's score)."""
        return self.rungs[max(self.rungs)] if self.rungs else None

    def rung(self, questions: int) -> Measured | None:
        return self.rungs.get(questions)

    def spec(self, study: str) -> PipelineSpec:
        return loads_spec(self.spec_text, f"study {study} trial {self.number}")


def measured(raw: dict | None) -> Measured | None:
    return Measured.model_validate(raw) if raw else None


# -- writing (to a live optuna.Trial) ----------------------------------------------------------------
def claim(trial, fingerprint: str, spec_text: str) -> None:
    trial.set_user_attr(FINGERPRINT, fingerprint)
    trial.set_user_attr(SPEC, spec_text)


def started_by(trial, host: str, pid: int) -> None:
    trial.set_user_attr(HOST, host)
    trial.set_user_attr(PID, pid)


def write_rungs(trial, rungs: dict[int, Measured]) -> None:
    trial.set_user_attr(RUNGS, {str(k): m.model_dump() for k, m in rungs.items()})


def write_result(trial, search: Measured, unscored: int) -> None:
    trial.set_user_attr(SEARCH, search.model_dump())
    trial.set_user_attr(UNSCORED, unscored)


def write_non_call(trial, times: dict[str, list[float]], per_place: int = 256) -> None:
    """Each layer place's first ``per_place`` times, to ten microseconds (a user attribute stays small)."""
    trial.set_user_attr(NON_CALL, {place: [round(x, 5) for x in xs[:per_place]] for place, xs in times.items()})


def write_failure(trial, reason: str) -> None:
    trial.set_user_attr(FAILURE, reason)


def add_failed_questions(trial, lines: list[str]) -> None:
    seen = list(trial.user_attrs.get(FAILED_QUESTIONS, [])) + lines
    trial.set_user_attr(FAILED_QUESTIONS, seen[:50])


def write_retried(trial, lines: list[str]) -> None:
    trial.set_user_attr(RETRIED_QUESTIONS, lines[:50])


def copy_result(trial, previous) -> None:
    """A pipeline proposed again takes over the result of its first trial."""
    for key in COPIED:
        if key in previous.user_attrs:
            trial.set_user_attr(key, previous.user_attrs[key])
    trial.set_user_attr(DUPLICATE_OF, previous.number)


def attrs_of(trial) -> dict[str, Any]:
    return dict(trial.user_attrs)
