"""``SurrogateSampler``: Thompson sampling over the pipelines of a space.

Before each trial: refit the model on what the cache holds, draw ONE posterior sample, predict every
pipeline the space can make (replaying the samples already bought, drawing the rest:
conditional.py), and propose the unevaluated one that most improves the hypervolume of the front
(observed points plus that candidate's predicted point). It starts (``startup="probe"``)
by running the cheapest pipeline of each model not yet sampled (one sample per question, from the
setting whose pool the larger pipelines reuse), then plans from the posterior straight away; with
``startup="tpe"`` it defers to TPE for the first ``min_trials`` trials instead. Spaces with layers
the model does not cover, and parameters a plan leaves open, go to TPE.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import optuna
from optuna._hypervolume import compute_hypervolume
from optuna.trial import TrialState

from ..llm.cache import CallCache
from ..objectives import Objective
from ..space import SearchSpace, enumerate_space, spec_fingerprint
from ..tasks.task import Record, Task
from .conditional import simulate_scores
from .model import Shapes, Surrogate
from .observe import Observer, features, model_index, pipeline_shape


class SurrogateSampler(optuna.samplers.BaseSampler):
    def __init__(self, space: SearchSpace, task: Task, records: list[Record], objective: Objective, cache: CallCache,
                 memo: dict, seed: int = 0, min_trials: int = 4, shapes: Shapes = Shapes(),
                 startup: Literal["tpe", "probe"] = "probe") -> None:
        self.space, self.task, self.objective, self.startup = space, task, objective, startup
        self.fallback = optuna.samplers.TPESampler(seed=seed, multivariate=True, n_startup_trials=min_trials)
        self.rng = np.random.default_rng(seed)
        self.min_trials = min_trials
        self.observer = Observer(task, records, cache, memo)
        self.surrogate = Surrogate(shapes, seed=seed)
        self.shapes = shapes
        self._candidates = None
        self._plans: dict[int, dict] = {}
        self.last_posterior = None
        self.last_known = None
        self.log: list[dict] = []

    # -- candidates ----------------------------------------------------------------------------
    def candidates(self):
        if self._candidates is None:
            rows = []
            for params, spec in enumerate_space(self.space, self.task):
                shape = pipeline_shape(spec)
                if shape is None:
                    self._candidates = []
                    return self._candidates  # the model does not cover this space: TPE throughout
                rows.append((params, spec_fingerprint(spec), shape))
            generators = list({s.generator.key: s.generator for _, _, s in rows}.values())[: self.shapes.generators]
            keep = {g.key for g in generators}
            rows = [r for r in rows if r[2].generator.key in keep]
            self._generators = generators
            self._features = features([r[2] for r in rows], generators)
            self._candidates = rows
        return self._candidates

    # -- Optuna hooks --------------------------------------------------------------------------
    def infer_relative_search_space(self, study, trial):
        return {}

    def sample_relative(self, study, trial, search_space):
        return {}

    def before_trial(self, study, trial) -> None:
        self.fallback.before_trial(study, trial)
        done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if not self.candidates():
            return
        seen = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
        evaluated = {t.user_attrs.get("fingerprint") for t in seen}
        plan = self._probe(evaluated) if self.startup == "probe" else None
        if plan is None and done and (len(done) >= self.min_trials or self.startup == "probe"):
            plan = self._plan(done, evaluated)
        if plan is not None:
            self._plans[trial.number] = plan

    def sample_independent(self, study, trial, param_name, param_distribution):
        plan = self._plans.get(trial.number, {})
        if param_name in plan:
            value = plan[param_name]
            try:
                if param_distribution._contains(param_distribution.to_internal_repr(value)):
                    return value
            except (ValueError, TypeError):
                pass
        return self.fallback.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(self, study, trial, state, values) -> None:
        self._plans.pop(trial.number, None)
        self.fallback.after_trial(study, trial, state, values)

    # -- the proposal --------------------------------------------------------------------------
    def fit(self):
        """Refit on what the cache holds; keeps the posterior and the known samples (judged once)."""
        judged = self.observer.judged(self._generators)
        obs = self.observer.observe(self._generators, judged)
        if len(obs.q) == 0:
            return None
        self.last_known = self.observer.known(self._generators, judged)
        self.last_posterior = self.surrogate.fit(obs)
        return self.last_posterior

    def _probe(self, evaluated: set) -> dict | None:
        """The cheapest pipeline of a model no evaluated pipeline has sampled yet, or None."""
        model_of = model_index(self._generators)[self._features.g]
        probed = {model_of[i] for i, (_, fp, _) in enumerate(self._candidates) if fp in evaluated}
        todo = [i for i in range(len(self._candidates)) if model_of[i] not in probed]
        if not todo:
            return None
        reused = {g: self._features.n[self._features.g == g].max() for g in set(self._features.g)}
        f = self._features
        pick = min(todo, key=lambda i: (f.n[i], -reused[f.g[i]], f.v[i] >= 0, bool(f.vote[i]), i))
        self.log.append({"probe": self._candidates[pick][1]})
        return self._candidates[pick][0]

    def _plan(self, done, evaluated: set) -> dict | None:
        posterior = self.fit()
        if posterior is None:
            return None
        draw = int(self.rng.integers(posterior.draws))
        acc = simulate_scores(posterior, self._features, self.last_known, self.rng, np.array([draw]))[0]
        predicted = np.array([self._objective_point(a, shape) for a, (_, _, shape) in zip(acc, self._candidates)])
        observed = np.array([self._to_min(t.values) for t in done])
        reference = np.max(np.vstack([predicted, observed]), axis=0) + 1e-6
        reference = reference + 0.1 * np.abs(reference) + 1e-3
        base = compute_hypervolume(observed, reference)
        best, best_gain = None, 0.0
        for i, (_, fp, _) in enumerate(self._candidates):
            if fp in evaluated:
                continue
            gain = compute_hypervolume(np.vstack([observed, predicted[i]]), reference) - base
            if gain > best_gain + 1e-12:
                best, best_gain = i, gain
        self.log.append({"draw": draw, "gain": best_gain, "choice": None if best is None else self._candidates[best][1]})
        return None if best is None else self._candidates[best][0]

    def _to_min(self, values) -> list[float]:
        return [-v if m.direction == "maximize" else v for v, m in zip(values, self.objective.metrics)]

    def _objective_point(self, accuracy: float, shape) -> list[float]:
        stats = self.observer.call_stats(shape.generator)
        metrics = {"accuracy": accuracy, "calls_per_question": float(shape.n),
                   "usd_per_question": shape.n * stats["usd"], "latency_p50_s": stats["latency"],
                   "latency_p95_s": stats["latency"]}
        return self._to_min([metrics[m.name] for m in self.objective.metrics])
