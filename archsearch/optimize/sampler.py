"""``SurrogateSampler``: Thompson sampling over the pipelines of a space.

Before each trial: read what the cache holds (refitting only when it holds something new), draw ONE
posterior sample -- a distinct one per trial, so workers sharing a study disagree -- predict each
candidate pipeline's accuracy, calls, dollars and latency (replaying the calls already bought,
drawing the rest), and propose the one whose predicted point adds most hypervolume to the observed
front per call its evaluation would buy (samples and verdicts already cached are free, so pipelines
that reuse them come first; EI per unit cost); when no candidate is expected to add anything, the
one predicted nearest the front is tried, to correct the model where that pays most. Pipelines
already evaluated, or running in another worker, are never proposed. An enqueued trial (a user's,
say) is left as it is; the first others run the cheapest pipeline of each generator model no trial
has sampled. Candidates: every pipeline of a space small enough to list; otherwise a fresh draw
per trial of random pipelines plus every pipeline one decision away from the observed front. A
pipeline the surrogate cannot model (a plugin layer without a step) is left to TPE, every third trial.
"""

from __future__ import annotations

import dataclasses
import json
import random
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState

from ..bayes.evidence import WHOLE_GRID_CELLS, Evidence
from ..bayes.fit import Surrogate
from ..bayes.hypervolume import mean_gains
from ..bayes.interpret import Simulated
from ..bayes.plan import Plan, plan_of
from ..candidates import Drawer, has_floats, neighbours
from ..llm.cache import CallCache
from ..objectives import Objective, compared
from ..space import SearchSpace, spec_fingerprint
from ..tasks.task import Record, Task
from ..techniques.base import model_identity
from .study import feasible
from .tpe import RungAwareTPE

CONSTRAINED = {"usd_per_question", "latency_p50_s", "latency_p95_s", "calls_per_question", "accuracy"}


@dataclass(frozen=True)
class Candidate:
    params: dict[str, Any]
    fingerprint: str
    plan: Plan | None          # None: the surrogate does not model it


def search_surrogate(seed: int) -> Surrogate:
    """The surrogate a search fits: SVI, its cold refits on a large grid in the background."""
    return Surrogate(seed=seed, method="svi", background_refits_over=WHOLE_GRID_CELLS)


class SurrogateSampler(optuna.samplers.BaseSampler):
    def __init__(self, space: SearchSpace, task: Task, records: list[Record], objective: Objective, cache: CallCache,
                 memo: dict, seed: int = 0, surrogate: Surrogate | None = None, cost_aware: bool = True,
                 enumerate_limit: int = 5000, drawn: int = 128, replicates: int = 6, price_floor: float | None = None) -> None:
        self.space, self.task, self.records, self.objective = space, task, records, objective
        self.cache, self.memo, self.seed = cache, memo, seed
        self.fallback = RungAwareTPE(seed=seed, multivariate=True, n_startup_trials=4)
        self.cost_aware, self.enumerate_limit, self.drawn = cost_aware, enumerate_limit, drawn
        self.replicates, self.redraws, self.expected_draws = replicates, 4, 32
        # the price of a proposal: the calls it buys plus one (a free pipeline is still a trial)
        self.price_floor = 1.0 if price_floor is None else price_floor
        # one posterior draw per trial: SVI restarted from its last solution refits quickly; on a large
        # grid, a first fit's and a verifier's first verdicts' cold fits run while the search goes on
        self.surrogate = surrogate or search_surrogate(seed)
        self.evidence: Evidence | None = None
        self._listed: list[Candidate] | None = None
        self._unlistable = has_floats(space)   # set once listing finds too many pipelines
        self._plans: dict[int, dict] = {}
        self._plan_of: dict[str, Plan | None] = {}          # fingerprint -> its plan: a pipeline met again is planned once
        self._models: dict[str, list[str]] = {}             # fingerprint -> its generator models' identities
        self._replayed: dict[str, dict[str, float]] = {}   # fingerprint -> outcome of a pipeline the cache fully holds
        # pipelines found to be replays that add nothing to the front: they stay so (a replay never changes,
        # the front only grows), so a proposal among them alone is TPE's without simulating them again
        self._spent: set[str] = set()
        self.log: list[dict] = []

    # -- candidates ----------------------------------------------------------------------------
    def _candidate(self, params: dict, spec) -> Candidate:
        fingerprint = spec_fingerprint(spec)
        if fingerprint not in self._plan_of:
            self._plan_of[fingerprint] = plan_of(spec)
        return Candidate(params, fingerprint, self._plan_of[fingerprint])

    def listed(self) -> list[Candidate] | None:
        """Every pipeline of the space, or None when it has too many to list."""
        if self._listed is None and not self._unlistable:
            if self.space.count(self.task, at_most=self.enumerate_limit + 1) <= self.enumerate_limit:
                self._listed = [self._candidate(params, spec) for params, spec in self.space.pipelines(self.task)]
            else:
                self._unlistable = True
        return self._listed

    def candidates(self, study: optuna.Study, rng: random.Random) -> list[Candidate]:
        listed = self.listed()
        if listed is not None:
            return listed
        seen: dict[str, Candidate] = {}

        def add(fixed: dict | None) -> Drawer:
            drawer = Drawer(rng, fixed)
            spec = self.space.build(drawer, self.task)
            seen.setdefault(spec_fingerprint(spec), self._candidate(dict(drawer.params), spec))
            return drawer

        for _ in range(self.drawn):
            add(None)
        for t in _front(study):
            base = add(t.params)
            for moved in neighbours(base.params, base.options, rng):
                add(moved)
        return list(seen.values())

    def knew(self, number: int, fingerprint: str) -> bool:
        """Whether trial ``number`` is this sampler's proposal of a pipeline whose every call on the
        search questions the cache holds: chosen for its whole-split outcome, and free to score."""
        return number in self._plans and fingerprint in self._replayed

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
        if "fixed_params" in trial.system_attrs:   # an enqueued trial: its params are set (GridSampler checks so too)
            return
        rng = random.Random(hash((self.seed, trial.number)))
        candidates = self.candidates(study, rng)
        covered = [c for c in candidates if c.plan is not None]
        if not covered or (len(covered) < len(candidates) and trial.number % 3 == 2):
            return   # TPE: nothing modelled, or its turn for the pipelines the model cannot see
        taken = _taken(study, trial.number)
        params = self._probe(covered, taken) or self._propose(study, covered, taken, trial.number)
        if params is not None:
            self._plans[trial.number] = params

    def sample_independent(self, study, trial, param_name, param_distribution):
        plan = self._plans.get(trial.number, {})
        if param_name in plan and _contains(param_distribution, plan[param_name]):
            return plan[param_name]
        return self.fallback.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(self, study, trial, state, values) -> None:
        self._plans.pop(trial.number, None)
        self.fallback.after_trial(study, trial, state, values)

    def close(self) -> None:
        """The search is over: end the surrogate's background refit."""
        self.surrogate.discard_background()

    # -- the proposal --------------------------------------------------------------------------
    def fit(self, plans: list[Plan] | None = None):
        """Refit on what the cache holds (None while nothing is known)."""
        plans = plans if plans is not None else [c.plan for c in self.listed() or [] if c.plan is not None]
        if self.evidence is None:
            self.evidence = Evidence(self.task, self.records, self.cache, self.memo, plans, self.surrogate, clock=time.time)
        self.evidence.plans = plans
        return self.evidence.refresh()

    def _probe(self, covered: list[Candidate], taken: set[str]) -> dict | None:
        """The cheapest pipeline that samples a generator model no evaluated pipeline has sampled yet
        (alone if it can, else in the smallest ensemble), or None: a model's ability is what its
        samples, and its judgements, rankings and fusions, are predicted from."""
        plain = [c for c in covered if not any(layer.kind in ("rank", "critique", "fuse") for layer in c.plan.layers)]
        if not plain:
            return None
        keys = {c.fingerprint: self._generator_models(c) for c in plain}
        probed = {m for c in plain if c.fingerprint in taken for m in keys[c.fingerprint]}
        todo = [c for c in plain if set(keys[c.fingerprint]) - probed]
        if not todo:
            return None
        reuse: dict[str, int] = {}
        for c in plain:
            for g in c.plan.generators():
                reuse[g.key] = max(reuse.get(g.key, 0), c.plan.slots)

        def order(c: Candidate) -> tuple:
            kinds = [layer.kind for layer in c.plan.layers]
            return (len(c.plan.generators()), c.plan.slots, -sum(reuse[g.key] for g in c.plan.generators()),
                    kinds.count("verify") + kinds.count("test"), "vote" in kinds,
                    any(g.params.stop != "never" for g in c.plan.generators()))

        pick = min(todo, key=order)
        self.log.append({"probe": pick.fingerprint})
        return pick.params

    def _generator_models(self, c: Candidate) -> list[str]:
        """The identities of a candidate's generator models (kept: every trial's probe asks again)."""
        if c.fingerprint not in self._models:
            self._models[c.fingerprint] = [json.dumps(model_identity(g.model), sort_keys=True) for g in c.plan.generators()]
        return self._models[c.fingerprint]

    def _propose(self, study, covered: list[Candidate], taken: set[str], number: int) -> dict | None:
        done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.values]
        open_ = [c for c in covered if c.fingerprint not in taken]
        if not done or not open_ or {c.fingerprint for c in open_} <= self._spent:
            return None
        if self.fit([c.plan for c in covered]) is None:
            return None
        rng = np.random.default_rng([self.seed, number])
        observed = np.array([self._to_min(t.values) for t in done if feasible(t)]).reshape(
            -1, len(self.objective.metrics))
        nearest = None
        for attempt in range(self.redraws):  # noqa: B007 - a draw in which nothing can gain: draw again
            draw = int(rng.integers(self.last_posterior.draws))
            sim = self._simulate(open_, draw, rng)
            gain, price = self._score(sim, observed)
            best = int(np.argmax(gain / price))
            if gain[best] > 1e-12 or sim.determined.all():   # all known: no other draw changes a thing
                break
        else:   # no single draw promises a gain (one objective near its best): the gain expected over many
            # draws still ranks what is worth its calls, where handing the trial to TPE buys blindly
            many = rng.choice(self.last_posterior.draws, min(self.expected_draws, self.last_posterior.draws), replace=False)
            draw = -1
            sim = self.evidence.on_search([c.plan for c in open_], rng, many)
            gain, price = self._score(sim, observed)
            best = int(np.argmax(gain / price))
            if gain[best] <= 1e-12:   # nor does their mean: test the model where it is most likely wrong in our favour
                nearest = self._closest_to_front(sim, observed)
        pick = best if gain[best] > 1e-12 else nearest
        if pick is None and sim.determined.all():
            self._spent |= {c.fingerprint for c in open_}
        self.log.append({"draw": draw, "gain": float(gain[best]), "price": float(price[best]), "redraws": attempt,
                         "nearest": pick is not None and pick == nearest,
                         "choice": open_[pick].fingerprint if pick is not None else None, "candidates": len(open_)})
        return open_[pick].params if pick is not None else None

    def _closest_to_front(self, sim: Simulated, observed: np.ndarray) -> int | None:
        """The feasible candidate whose mean predicted point lies nearest the observed front (the
        shift, in units of each objective's spread, that would leave it undominated; for one objective:
        the best predicted mean), among those with calls still to buy (the others' outcomes are known
        and dominated); None if there is none. Price is left out: the cheapest pipelines are the least
        informative ones (a single sample of a prompt already known)."""
        mean = self._minimised(sim).mean(axis=0)   # [C, K]
        front = observed if len(observed) else mean.max(axis=0, keepdims=True)
        both = np.vstack([front, mean])
        spread = np.maximum(both.max(axis=0) - both.min(axis=0), 1e-12)
        # p is dominated by f until shifted by min_k (p_k - f_k); by the front until by the largest of those
        shift = np.max(np.min((mean[:, None, :] - front[None, :, :]) / spread, axis=-1), axis=1)
        shift = np.where(~sim.determined & self._feasible(sim), shift, np.inf).reshape(-1)
        return int(np.argmin(shift)) if np.isfinite(shift.min()) else None

    def _score(self, sim: Simulated, observed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(expected hypervolume gain, calls bought + the floor) of each candidate: its gain averaged
        over the simulated rows -- under one posterior draw, simulated ``replicates`` times, the
        expected gain given that draw (Thompson sampling), so that the argmax over many candidates
        is not won by one lucky simulated outcome."""
        K = len(self.objective.metrics)
        predicted = self._minimised(sim)
        reference = np.max(np.vstack([predicted.reshape(-1, K), observed]), axis=0)
        reference = reference + 0.1 * np.abs(reference) + 1e-3
        gain = mean_gains(observed, predicted, reference)
        gain = np.where(self._feasible(sim), gain, 0.0)
        price = sim.bought.mean(axis=0) + self.price_floor if self.cost_aware else np.ones(predicted.shape[1])
        return gain, price

    def _minimised(self, sim: Simulated) -> np.ndarray:
        """[R, C, K] each simulated row's objectives as the search compares them (``compared``), signed
        so that lower is better (as ``_to_min``)."""
        predicted = np.stack([compared(m.name, sim.metric(m.name)) for m in self.objective.metrics], axis=-1)
        return np.where(np.array([m.direction == "maximize" for m in self.objective.metrics]), -predicted, predicted)

    def _simulate(self, candidates: list[Candidate], draw: int, rng) -> Simulated:
        """Each candidate under posterior draw ``draw``, ``replicates`` times. A pipeline whose every
        call the cache holds replays one outcome in every replicate and under every draw (the cache
        only grows), so it is simulated once per sampler and repeated (in a search over a recorded
        pool that is nearly all of them). Its latency is its calls' alone: the sampler leaves out the
        non-call time per step (``bayes/non_call.py``), which the report's predictions include."""
        plans = [c.plan for c in candidates]
        fields = [f.name for f in dataclasses.fields(Simulated) if f.name != "determined"]
        rows = [self._replayed.get(c.fingerprint) for c in candidates]
        todo = [i for i, row in enumerate(rows) if row is None]
        determined = np.ones(len(candidates), bool)
        if todo:
            fresh = self.evidence.on_search([plans[i] for i in todo], rng, np.full(1, draw))
            for k, i in enumerate(todo):
                rows[i] = {name: getattr(fresh, name)[0, k] for name in fields}
                determined[i] = fresh.determined[k]
                if determined[i]:
                    self._replayed[candidates[i].fingerprint] = rows[i]
        once = Simulated(**{name: np.array([[row[name] for row in rows]]) for name in fields}, determined=determined)
        drawn = np.flatnonzero(~once.determined)
        out = {f.name: np.repeat(getattr(once, f.name), self.replicates, axis=0) for f in dataclasses.fields(once)
               if f.name != "determined"}
        if len(drawn):
            again = self.evidence.on_search([plans[i] for i in drawn], rng, np.full(self.replicates, draw))
            for name, value in out.items():
                value[:, drawn] = getattr(again, name)
        return Simulated(**out, determined=once.determined)

    def _feasible(self, sim) -> np.ndarray:
        ok = np.ones(sim.accuracy.shape[1], bool)
        for name, bound in self.objective.constraints.items():
            if name in CONSTRAINED:
                value = sim.metric(name).mean(axis=0)
                ok &= (bound.max is None or value <= bound.max) & (bound.min is None or value >= bound.min)
        return ok

    def _to_min(self, values) -> list[float]:
        return [-v if m.direction == "maximize" else v for v, m in zip(values, self.objective.metrics)]


def _taken(study: optuna.Study, number: int) -> set[str]:
    """Fingerprints evaluated, or claimed by a trial still running (another worker's)."""
    out = set()
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)):
        if t.number != number and t.user_attrs.get("fingerprint"):
            out.add(t.user_attrs["fingerprint"])
    return out


def _front(study: optuna.Study) -> list:
    """The Pareto-optimal trials, the first of each point (tied pipelines' neighbours are mostly the same)."""
    try:
        trials = sorted((t for t in study.best_trials if t.params), key=lambda t: t.number)
    except (RuntimeError, ValueError):
        return []
    first: dict[tuple, optuna.trial.FrozenTrial] = {}
    for t in trials:
        first.setdefault(tuple(t.values), t)
    return list(first.values())


def _contains(distribution, value) -> bool:
    """Whether an Optuna distribution admits ``value`` (its public parts only)."""
    if isinstance(distribution, optuna.distributions.CategoricalDistribution):
        return any(value == c and type(value) is type(c) for c in distribution.choices)
    if isinstance(distribution, optuna.distributions.IntDistribution):
        return isinstance(value, int) and distribution.low <= value <= distribution.high \
            and (value - distribution.low) % distribution.step == 0
    if isinstance(distribution, optuna.distributions.FloatDistribution):
        return isinstance(value, (int, float)) and distribution.low <= value <= distribution.high
    return False
