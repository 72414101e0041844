"""``vote``: plurality over the candidates' vote keys (answer text, or behaviour on the visible
tests' inputs -- text where a question has none), weighted by accepted verdicts if asked; only
candidates at the highest key level vote (a behaviour beats a mere text); ties go to the earliest.
By agreement (CodeT): the behaviour on the last test layer's inputs, each candidate weighing the
share of those tests it passes.
Known answers carry their keys; a drawn one repeats its question's modal answer or is new."""

from __future__ import annotations

from math import comb

import numpy as np

from .state import Draws, State, Step, per_pipeline


def _beta_lead_table(size: int = 65) -> np.ndarray:
    """P(p1 > p2) under Beta(v1 + 1, v2 + 1): the vote layer's stopping rule (techniques/vote.py)."""
    table = np.zeros((size, size))
    for v1 in range(size):
        for v2 in range(size):
            n = v1 + v2 + 1
            table[v1, v2] = sum(comb(n, k) for k in range(v1 + 1)) / 2 ** n
    return table


BETA_LEAD = _beta_lead_table()
TEXT_KEYS = 2_000_000   # vote-key ids by text, apart from the behaviour ones, in a vote by agreement


class VoteStep(Step):
    kind = "vote"

    def __init__(self, layers: list, ctx) -> None:
        super().__init__(layers, ctx)
        self.by_behaviour = per_pipeline([layer.params.by == "behaviour" for layer in layers])
        self.agreement = per_pipeline([layer.params.by == "agreement" for layer in layers])
        self.weighted = per_pipeline([layer.params.weight_by == "verdicts" for layer in layers])
        self.verdict_weight = per_pipeline([layer.params.verdict_weight for layer in layers], float)

    def keys(self, s: State, pool: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(cluster, voters): each slot's vote key, and which of the ``pool`` slots vote (the top level)."""
        cluster = np.where(self.by_behaviour, s.cl1, s.cl0)
        level = np.where(self.by_behaviour, s.lv1, s.lv0)
        # by agreement: the behaviour on the last test layer's inputs, else the text; any key votes
        cluster = np.where(self.agreement, np.where(s.tested, s.ag, s.cl0 + TEXT_KEYS), cluster)
        level = np.where(self.agreement, np.minimum(np.where(s.tested, s.aglv, s.lv0), 1), level)
        top = np.where(pool, level, -1).max(axis=-1, keepdims=True)
        return cluster, pool & (level == top)

    def tally(self, s: State, pool: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(v1, v2) [D, P, Q]: unweighted votes of the leading key and of the runner-up."""
        cluster, voters = self.keys(s, pool)
        same = (cluster[..., :, None] == cluster[..., None, :]) & voters[..., None, :]
        count = np.where(voters, same.sum(axis=-1), 0)
        v1 = count.max(axis=-1)
        lead = np.take_along_axis(cluster, np.argmax(count, axis=-1)[..., None], axis=-1)
        v2 = np.where(voters & (cluster != lead), count, 0).max(axis=-1)
        return v1, v2

    def winner(self, s: State, pool: np.ndarray) -> np.ndarray:
        """[D, P, Q, N] the slot the vote picks among ``pool``: the first of the heaviest key."""
        cluster, voters = self.keys(s, pool)
        w = np.where(self.weighted, 1.0 + self.verdict_weight * s.weight, 1.0)
        w = np.where(self.agreement, np.where(s.tested, s.trate, 0.0), w)   # a group scores its tests passed
        same = (cluster[..., :, None] == cluster[..., None, :]) & voters[..., None, :]
        # each slot's key's weight; summed by einsum (5x a product and a sum here), equal to the last few
        # bits, which the tie test below absorbs
        heavy = np.where(voters, np.einsum("...ij,...j->...i", same, w), -1.0)
        best = heavy.max(axis=-1, keepdims=True)
        return s.first(voters & np.isclose(heavy, best, rtol=1e-9, atol=0.0))

    def apply(self, s: State, draws: Draws) -> np.ndarray:
        s.alive = self.winner(s, s.alive)
        return np.zeros(s.alive.shape[:3])
