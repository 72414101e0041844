"""Everything the surrogate knows, in one place: the cache read through the techniques (observe),
the model fitted to it (model), the cost model (costs), and predictions for any list of plans --
on the search questions (replaying what is known) or on new questions (nothing known)."""

from __future__ import annotations

import dataclasses

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

    def refresh(self) -> Posterior | None:
        """Read the cache, refit; None while nothing is known."""
        self.known = self.observer.observe(self.plans)
        obs = observations(self.known, self.observer.verifiable)
        if len(obs.q) == 0:
            return None
        self.arrays = known_arrays(self.known)
        self.posterior = self.surrogate.fit(obs)
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
