"""``generate``: n more candidates, sample i of the generator being the same object in every
pipeline. A known sample (the cache holds it) is replayed; a drawn one is right with its cell's
accuracy, passes the visible tests with their TPR or FPR, and repeats its question's modal answer
with the pool's agreement rate (by text rarely, by behaviour nearly always)."""

from __future__ import annotations

import numpy as np

from ..objects import CANONICAL, FRESH, UNKNOWN
from .state import Draws, State, Step, joined_or_fresh, known_or_drawn


class GenerateStep(Step):
    kind = "generate"

    def __init__(self, layers: list, ctx) -> None:
        super().__init__(layers, ctx)
        self.g = np.array([ctx.generators[layer.key] for layer in layers])
        self.n = np.array([layer.params.n for layer in layers])
        self.start = np.array([layer.start for layer in layers])
        self.adds = int(self.n.max())

    @property
    def last_index(self) -> int:
        """The highest sample index any pipeline of this layer draws (plus one)."""
        return int((self.start + self.n).max())

    def fill(self, s: State, draws: Draws, k: slice) -> tuple[np.ndarray, np.ndarray]:
        """Write slots ``k`` (of this layer's range) into the state; returns which are used [P, K]
        and their calls' recorded costs [3, D, P, Q, K] (nan where drawn)."""
        a = self.ctx.arrays
        ks = np.arange(self.adds)[k]
        P, Q, D = len(self.g), a.questions, len(draws.d)
        if not len(ks):
            return np.zeros((P, 0), bool), np.zeros((3, D, P, Q, 0))
        i = self.start[:, None] + ks[None, :]                                         # [P, K]
        used = ks[None, :] < self.n[:, None]
        g3, q3, i3 = self.g[:, None, None], np.arange(Q)[None, :, None], i[:, None, :]   # -> [P, Q, K]
        M = a.sample.shape[2]
        known = used[:, None, :] & (i3 < a.m[g3, q3])
        obj = np.where(known, a.sample[g3, q3, np.minimum(i3, M - 1)], UNKNOWN)
        safe = np.maximum(obj, 0)
        # a slot a pipeline does not use (k >= its n) may point past the last sample drawn: clip it
        # (its values are never read: ``used`` masks it)
        u = (slice(None), g3, q3, np.minimum(i3, draws.correct.shape[-1] - 1))
        correct = known_or_drawn(known, lambda: a.correct[q3, safe], draws.correct[u] < draws.p[:, g3, q3])
        rate = known_or_drawn(known, lambda: a.rate[q3, safe], self._drawn_rate(draws, u, correct))
        by_text, by_behaviour, level = self._drawn_keys(draws, u, correct, rate, FRESH + self.offset + ks)
        window = (Ellipsis, slice(self.offset + ks[0], self.offset + ks[-1] + 1))
        s.alive[window] = used[None, :, None, :]
        s.obj[window] = obj
        s.correct[window] = correct
        s.gen[window] = np.broadcast_to(g3, known.shape)
        s.src[window] = i3
        s.rate[window] = rate
        s.cl0[window] = known_or_drawn(known, lambda: a.cluster[0][q3, safe], by_text)
        s.cl1[window] = known_or_drawn(known, lambda: a.cluster[1][q3, safe], by_behaviour)
        s.lv0[window] = known_or_drawn(known, lambda: a.level[0][q3, safe], 1)
        s.lv1[window] = known_or_drawn(known, lambda: a.level[1][q3, safe], level)
        s.weight[window], s.critic[window], s.tested[window] = 0.0, UNKNOWN, False
        cost = np.where(known[None], a.gen_cost[:, g3, q3, np.minimum(i3, M - 1)], np.nan)
        return used, np.broadcast_to(cost[:, None], (3, D, P, Q, len(ks)))

    def _drawn_rate(self, draws: Draws, u: tuple, correct: np.ndarray) -> np.ndarray:
        """[D, P, Q, K] a drawn sample's share of visible tests passed: all (with the generator's TPR
        if right, its FPR if wrong) or none."""
        a, g3 = self.ctx.arrays, u[1]
        if not self.ctx.visible:
            return np.zeros(correct.shape)
        # each pipeline's generator's rates, [D, P, 1, 1] and [D, P, Q, 1]: the same for all its slots
        c0, f0 = draws.tpr(0, g3[None]), draws.fpr(0, np.broadcast_to(g3[None], (1, len(self.g), a.questions, 1)))
        return (a.testable[None, None, :, None] & (draws.passes[u] < np.where(correct, c0, f0))).astype(float)

    def _drawn_keys(self, draws: Draws, u: tuple, correct: np.ndarray, rate: np.ndarray, fresh: np.ndarray) -> tuple:
        """A drawn sample's vote keys by text and by behaviour (``fresh``: its own key when it joins no
        modal answer), and its level by behaviour (1 where it has none)."""
        a, (_, g3, q3, _) = self.ctx.arrays, u
        joins, testable = draws.joins[u], a.testable[None, None, :, None]

        def drawn_key(mode: int) -> np.ndarray:
            agree = np.where(correct, draws.agreement[0, mode][:, g3, q3], draws.agreement[1, mode][:, g3, q3])
            return joined_or_fresh(joins, agree, correct, fresh[None, None, None, :])

        by_text = drawn_key(0)
        # a program that passes every visible test returns the expected values on their inputs: by
        # behaviour it is one answer with the right programs, false positive or not
        by_behaviour = np.where(testable, np.where(rate == 1.0, CANONICAL, drawn_key(1)), by_text)
        muted = ~correct & (draws.mute[u] < a.mute_rate)
        return by_text, by_behaviour, np.where(testable & ~muted, 2, 1)

    def apply(self, s: State, draws: Draws) -> np.ndarray:
        used, cost = self.fill(s, draws, slice(None))
        made = np.broadcast_to(used[None, :, None, :], cost.shape[1:])
        return self.charge(s, draws, made, cost, "generate").max(axis=-1, initial=0.0)
