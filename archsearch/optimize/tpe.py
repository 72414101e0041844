"""Optuna's TPE for archsearch's studies: multi-objective, with successive-halving rungs."""

from __future__ import annotations

import optuna


class _FirstDirection:
    """A study as TPE reads it, except that ``direction`` is the first objective's: TPE ranks pruned
    trials by their last intermediate value (a rung's accuracy) through ``study.direction``, which
    a multi-objective study refuses."""

    def __init__(self, study: optuna.Study) -> None:
        self._study = study

    @property
    def direction(self) -> optuna.study.StudyDirection:
        return self._study.directions[0]

    def __getattr__(self, name: str):
        return getattr(self._study, name)


class RungAwareTPE(optuna.samplers.TPESampler):
    """TPE for a multi-objective study whose pruned trials carry rung values (see _FirstDirection)."""

    def sample_relative(self, study, trial, search_space):
        return super().sample_relative(_FirstDirection(study), trial, search_space)

    def sample_independent(self, study, trial, param_name, param_distribution):
        return super().sample_independent(_FirstDirection(study), trial, param_name, param_distribution)
