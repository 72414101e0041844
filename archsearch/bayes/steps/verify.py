"""``verify``: an LLM judge accepts or rejects each candidate, keeping the accepted ones (the
none-passed policy decides when there are none). A known verdict on a known answer is replayed;
a drawn one accepts with the judge's TPR for that generator if the candidate is right, its FPR
(higher on harder questions) if not."""

from __future__ import annotations

import numpy as np

from ..objects import UNKNOWN
from .state import Draws, State, Step, per_pipeline

KEEP_ALL, FALLBACK, ABSTAIN = 0, 1, 2
POLICY = {"keep_all": KEEP_ALL, "fallback": FALLBACK, "abstain": ABSTAIN}


class FilterStep(Step):
    """A judging layer: ``judge`` the candidates, then ``keep`` some (verify and test)."""

    def __init__(self, layers: list, ctx) -> None:
        super().__init__(layers, ctx)
        self.policy = per_pipeline([POLICY[layer.params.on_none_passed] for layer in layers])

    def judge(self, s: State, draws: Draws, mask: np.ndarray, alone: np.ndarray | None = None
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """(verdict [D, P, Q, N], whether the layer judges at all on each question [D, P, Q], the
        recorded cost of each judging call [3, D, P, Q, N] or None when it makes none) for the
        ``mask`` slots; the ``alone`` ones among them are judged one at a time (a generator that
        stops early), the others together. Nothing is charged or recorded: ``pay`` and ``record`` do that."""
        raise NotImplementedError

    def pay(self, s: State, draws: Draws, judged: np.ndarray, cost: np.ndarray | None) -> np.ndarray:
        """Charge the calls that judged ``judged``; each one's latency."""
        return np.zeros(judged.shape) if cost is None else self.charge(s, draws, judged, cost, self.kind)

    def annotate(self, s: State, judged: np.ndarray) -> None:
        """What the layer writes on each judged candidate besides its verdict (the test layer: the
        share passed and the behaviour on its tests), as soon as it is judged: a vote deciding when a
        generator may stop reads it."""

    def record(self, s: State, verdict: np.ndarray, judged: np.ndarray) -> None:
        """The runtime adds each verdict to its candidate; a weighted vote counts the accepted ones."""
        s.weight += verdict & judged

    def keep(self, s: State, judged: np.ndarray, verdict: np.ndarray, applies: np.ndarray) -> np.ndarray:
        """Which judged slots survive: the accepted ones, else what the none-passed policy says."""
        passing = judged & verdict
        none = np.where(self.policy == ABSTAIN, False, np.where(self.policy == FALLBACK, s.first(judged), judged))
        kept = np.where(passing.any(axis=-1, keepdims=True), passing, none)
        return np.where(applies[..., None], kept, judged)

    def accepted(self, verdict: np.ndarray, applies: np.ndarray) -> np.ndarray:
        """What the layer would keep on its own (a candidate it does not judge counts as accepted)."""
        return np.where(applies[..., None], verdict, True)

    def apply(self, s: State, draws: Draws) -> np.ndarray:
        judged = s.alive.copy()
        verdict, applies, cost = self.judge(s, draws, judged)
        lat = self.pay(s, draws, judged, cost)
        self.record(s, verdict, judged)
        s.alive = self.keep(s, judged, verdict, applies) & judged
        return lat.max(axis=-1, initial=0.0)


class VerifyStep(FilterStep):
    kind = "verify"

    def __init__(self, layers: list, ctx) -> None:
        super().__init__(layers, ctx)
        self.j = np.array([ctx.judges["verify"][layer.key] for layer in layers])

    def judge(self, s: State, draws: Draws, mask: np.ndarray, alone: np.ndarray | None = None
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        a = self.ctx.arrays
        j4, q4 = self.j[None, :, None, None], np.arange(a.questions)[None, None, :, None]
        safe = np.maximum(s.obj, 0)
        known = (a.verdict[j4, q4, safe] != UNKNOWN) & s.known
        chance = np.zeros(s.gen.shape)
        for j in np.unique(self.j):   # each pipeline's own judge
            v = self.ctx.visible + int(j)
            rate = np.where(s.correct, draws.tpr(v, s.gen), draws.fpr(v, s.gen))
            chance = np.where(per_pipeline(self.j == j), rate, chance)
        drawn = draws.verdict_uniforms(self.j, s) < chance
        verdict = np.where(known, a.verdict[j4, q4, safe] == 1, drawn) & mask
        cost = np.where(known[None], a.verdict_cost[:, j4, q4, safe], np.nan)
        return verdict, np.ones(mask.shape[:3], bool), cost
