"""Where the search meets Optuna: the storage (built here so the search can use its public API),
the study with the objective's metric names, the samplers, and the trials a killed worker left."""

from __future__ import annotations

import os
import socket
import time
import warnings

import optuna
from optuna.trial import TrialState

from ..errors import ArchsearchError
from .records import HOST, PID
from .tpe import RungAwareTPE

optuna.logging.set_verbosity(optuna.logging.WARNING)


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


def open_study(settings, sampler: optuna.samplers.BaseSampler | None = None,
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


def feasible(trial: optuna.trial.FrozenTrial) -> bool:
    """Whether a finished trial met every constraint (Optuna's convention: a value <= 0 is met)."""
    return all(v <= 0 for v in trial.constraints.values())


def fail_orphans(study: optuna.Study) -> int:
    """RUNNING trials left by a killed process on this host are failed so they do not linger."""
    host, failed = socket.gethostname(), 0
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        pid = t.user_attrs.get(PID)
        if t.user_attrs.get(HOST) == host and pid and not _alive(pid):
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




def report_rung(storage: optuna.storages.BaseStorage, study_name: str, number: int, questions: int,
                accuracy: float) -> None:
    """Trial.report refuses multi-objective studies; the storage's public API records the same value,
    so optuna-dashboard shows the rungs."""
    study_id = storage.get_study_id_from_name(study_name)
    trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, number)
    storage.set_trial_intermediate_value(trial_id, questions, accuracy)
