"""Everything the surrogate knows, in one place: the cache read through the techniques (observe),
the model fitted to it (model), the cost model (costs), and predictions for any list of plans --
on the search questions (replaying what is known) or on new questions (nothing known)."""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np

from ..llm.cache import CallCache
from ..tasks.task import Record, Task
from .costs import CostModel
from .known import KnownArrays, known_arrays, observations
from .model import Posterior, Surrogate
from .observe import Known, Observer
from .plan import Plan
from .replay import Context, Simulated
from .simulator import simulate


class Evidence:
    def __init__(self, task: Task, records: list[Record], cache: CallCache, memo: dict, plans: list[Plan],
                 surrogate: Surrogate | None = None) -> None:
        self.observer = Observer(task, records, cache, memo)
        self.plans = plans
        self.surrogate = surrogate or Surrogate()
        self.known: Known | None = None
        self.arrays: KnownArrays | None = None
        self.posterior: Posterior | None = None
        self.costs: CostModel | None = None
        self.ctx: Context | None = None
        self._fitted_on: str | None = None

    def refresh(self) -> Posterior | None:
        """Read the cache, refit; None while nothing is known."""
        self.known = self.observer.observe(self.plans)
        obs = observations(self.known, self.observer.verifiable)
        if len(obs.q) == 0:
            return None
        self.arrays = known_arrays(self.known)
        signature = _signature(obs)
        if self.posterior is None or signature != self._fitted_on:   # nothing new bought: the same posterior
            self.posterior, self._fitted_on = self.surrogate.fit(obs), signature
        self.costs = CostModel(self.known.calls())
        self.ctx = Context(self.arrays, self.known.generators, self.known.judges, int(self.observer.verifiable),
                           self.known.ranks, self.known.critiques, self.known.fused)
        return self.posterior

    @property
    def verifier_names(self) -> list[str]:
        return (["visible tests"] if self.observer.verifiable else []) + [j.model.id for j in self.known.judges["verify"]]

    def on_search(self, plans: list[Plan], rng: np.random.Generator, draws: np.ndarray | None = None) -> Simulated:
        """What each plan scores and spends on the search questions, replaying the known calls."""
        return simulate(self.posterior, plans, self.ctx, self.costs, rng, draws)

    def on_new(self, plans: list[Plan], questions: int, rng: np.random.Generator,
               draws: np.ndarray | None = None) -> Simulated:
        """The same on ``questions`` questions never seen: difficulties drawn from the fitted spread,
        samples from the cell Beta around the Rasch mean, nothing replayed."""
        post = self.posterior
        unseen = np.zeros((post.theta.shape[1], questions))
        fresh = dataclasses.replace(post, b=rng.normal(size=(post.draws, questions)) * post.sigma_b[:, None],
                                    cell_n=unseen, cell_y=unseen)
        testable = rng.random(questions) < self.arrays.testable.mean()
        ctx = dataclasses.replace(self.ctx, known=KnownArrays.fresh(self.arrays, questions, testable),
                                  ranks={}, critiques={}, fused={})
        return simulate(fresh, plans, ctx, self.costs, rng, draws)

    def unbought_calls(self, plans: list[Plan], determined: np.ndarray) -> np.ndarray:
        """[P] calls each plan would buy on the search questions: its samples and judge verdicts the
        cache lacks, and for the fusion family one call per layered step per question unless the
        whole plan is known (an upper bound for generators that stop early)."""
        ka, ctx = self.arrays, self.ctx
        Q, M = ka.questions, ka.correct.shape[2]
        out = np.zeros(len(plans))
        for p, plan in enumerate(plans):
            if determined[p]:
                continue
            for gen, n in plan.sources:
                g = ctx.gen(gen.key)
                out[p] += (n - np.minimum(ka.m[g], n)).sum()
                for check in plan.checks:
                    if check.judge is not None:
                        j = ctx.judge("verify", check.judge.key)
                        out[p] += (ka.verdict[j][g, :, :min(n, M)] < 0).sum() + Q * max(0, n - M)
            if plan.family == "fusion":
                layered = (plan.rank is not None) + (plan.fuse is not None)
                out[p] += Q * (layered + (plan.keep or plan.slots if plan.critique is not None else 0))
        return out


def _signature(obs) -> str:
    """A digest of the model's data: equal data, equal posterior (a refit would only cost time)."""
    digest = hashlib.sha256()
    for f in dataclasses.fields(obs):
        value = getattr(obs, f.name)
        digest.update(f.name.encode())
        digest.update(np.ascontiguousarray(value).tobytes() if isinstance(value, np.ndarray) else repr(value).encode())
    return digest.hexdigest()
