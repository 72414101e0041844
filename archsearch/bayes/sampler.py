"""``SurrogateSampler``: Thompson sampling over the pipelines of a space.

Before each trial: refit the model on what the cache holds, draw ONE posterior sample, predict
every pipeline the space can make -- accuracy, calls, dollars and latency, replaying the calls
already bought and drawing the rest (evidence.py) -- and propose the unevaluated one that most
improves the hypervolume of the front (observed points plus that candidate's predicted point) per
call its evaluation would buy (``cost_aware``: samples and verdicts already cached are free, so
pipelines that reuse them are tried before ones that buy new calls; EI per unit cost). It
starts (``startup="probe"``) by running the cheapest pipeline of each generator model not yet
sampled, then plans from the posterior straight away; with ``startup="tpe"`` it defers to TPE for
the first ``min_trials`` trials. Spaces with layers the model does not cover, and parameters a
plan leaves open, go to TPE.
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
from .evidence import Evidence
from .known import model_index
from .model import Surrogate
from .plan import plan_of, uncovered
from .tpe import RungAwareTPE


class SurrogateSampler(optuna.samplers.BaseSampler):
    def __init__(self, space: SearchSpace, task: Task, records: list[Record], objective: Objective, cache: CallCache,
                 memo: dict, seed: int = 0, min_trials: int = 4, startup: Literal["tpe", "probe"] = "probe",
                 surrogate: Surrogate | None = None, cost_aware: bool = True) -> None:
        self.space, self.task, self.records, self.objective, self.startup = space, task, records, objective, startup
        self.cache, self.memo = cache, memo
        self.fallback = RungAwareTPE(seed=seed, multivariate=True, n_startup_trials=min_trials)
        self.rng = np.random.default_rng(seed)
        self.min_trials, self.cost_aware = min_trials, cost_aware
        # one posterior draw per trial: SVI restarted from its last solution is fast enough to refit
        # before every trial (the report refits with NUTS when the data are small)
        self.surrogate = surrogate or Surrogate(seed=seed, method="svi")
        self._candidates = None
        self._plans: dict[int, dict] = {}
        self.evidence: Evidence | None = None
        self.uncovered: list[str] = []
        self.log: list[dict] = []

    # -- candidates ----------------------------------------------------------------------------
    def candidates(self):
        """(params, fingerprint, plan) of every pipeline of the space; [] when some are not modelled."""
        if self._candidates is None:
            rows, missing = [], set()
            for params, spec in enumerate_space(self.space, self.task):
                plan = plan_of(spec)
                if plan is None:
                    missing.update(uncovered(spec))
                rows.append((params, spec_fingerprint(spec), plan))
            self.uncovered = sorted(missing)
            self._candidates = [] if missing else rows
            if rows and not missing:
                self.evidence = Evidence(self.task, self.records, self.cache, self.memo, [r[2] for r in rows],
                                         self.surrogate)
        return self._candidates

    @property
    def last_posterior(self):
        return self.evidence.posterior if self.evidence else None

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
        """Refit on what the cache holds (None while nothing is known)."""
        self.candidates()
        return self.evidence.refresh() if self.evidence else None

    def _probe(self, evaluated: set) -> dict | None:
        """The cheapest pipeline of a generator model no evaluated pipeline has sampled yet, or None."""
        plans = [c[2] for c in self._candidates]
        single = [i for i, p in enumerate(plans) if len(p.generators()) == 1
                  and not any(layer.kind in ("rank", "critique", "fuse") for layer in p.layers)]
        if not single:
            return None
        models = model_index([plans[i].generators()[0].model for i in single])
        probed = {models[k] for k, i in enumerate(single) if self._candidates[i][1] in evaluated}
        todo = [k for k in range(len(single)) if models[k] not in probed]
        if not todo:
            return None
        reuse = {}
        for i in single:
            g = plans[i].generators()[0].key
            reuse[g] = max(reuse.get(g, 0), plans[i].slots)

        def order(k: int) -> tuple:
            plan = plans[single[k]]
            kinds = [layer.kind for layer in plan.layers]
            return (plan.slots, -reuse[plan.generators()[0].key], kinds.count("verify") + kinds.count("test"),
                    "vote" in kinds, plan.generators()[0].params.stop != "never", single[k])

        pick = single[min(todo, key=order)]
        self.log.append({"probe": self._candidates[pick][1]})
        return self._candidates[pick][0]

    def _plan(self, done, evaluated: set) -> dict | None:
        if self.fit() is None:
            return None
        draw = int(self.rng.integers(self.last_posterior.draws))
        sim = self.evidence.on_search([c[2] for c in self._candidates], self.rng, np.array([draw]))
        predicted = np.array([self._to_min([sim.metric(m.name)[0, i] for m in self.objective.metrics])
                              for i in range(len(self._candidates))])
        observed = np.array([self._to_min(t.values) for t in done])
        reference = np.max(np.vstack([predicted, observed]), axis=0) + 1e-6
        reference = reference + 0.1 * np.abs(reference) + 1e-3
        base = compute_hypervolume(observed, reference)
        # what evaluating each would buy: one question's worth of calls is the floor of a trial's price
        price = (sim.bought[0] + len(self.records) if self.cost_aware else np.ones(len(self._candidates)))
        best, best_gain, best_score = None, 0.0, 0.0
        for i, (_, fp, _) in enumerate(self._candidates):
            if fp in evaluated:
                continue
            gain = compute_hypervolume(np.vstack([observed, predicted[i]]), reference) - base
            if gain > 1e-12 and gain / price[i] > best_score:
                best, best_gain, best_score = i, gain, gain / price[i]
        self.log.append({"draw": draw, "gain": best_gain, "price": None if best is None else float(price[best]),
                         "choice": None if best is None else self._candidates[best][1]})
        return None if best is None else self._candidates[best][0]

    def _to_min(self, values) -> list[float]:
        return [-v if m.direction == "maximize" else v for v, m in zip(values, self.objective.metrics)]
