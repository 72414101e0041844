"""``rank``: a model orders the candidates and the top ``keep`` survive (no call for one or none).
A known ranking of known inputs is replayed; a drawn one is Plackett-Luce (Gumbel-max) with
utility beta * right + alpha * [listed first]: beta is how strongly the ranker prefers right
answers, alpha its position bias."""

from __future__ import annotations

import numpy as np

from .lookup import known_inputs
from .state import Draws, State, Step, per_pipeline


class RankStep(Step):
    kind = "rank"
    asks = True

    def __init__(self, layers: list, ctx) -> None:
        super().__init__(layers, ctx)
        self.r = np.array([ctx.judges["rank"][layer.key] for layer in layers])
        self.keep = per_pipeline([layer.params.keep for layer in layers])

    def apply(self, s: State, draws: Draws) -> np.ndarray:
        D, P, Q, N = s.alive.shape
        k = s.alive.sum(axis=-1)
        called = k >= 2
        beta, alpha = draws.rank_beta[:, self.r][:, :, None, None], draws.rank_alpha[:, self.r][:, :, None, None]
        util = beta * s.correct + alpha * s.first(s.alive) + draws.rng.gumbel(size=s.alive.shape)
        order = np.argsort(np.where(s.alive, -util, np.inf), axis=-1, kind="stable")
        cost = np.full((3, D, P, Q, 1), np.nan)
        objects = self.ctx.objects
        if objects is not None:
            for (d, p, q), inputs in known_inputs(s, self.ctx.arrays.critiqued):
                if len(inputs) < 2:
                    continue
                hit = objects.ranks.get((int(self.r[p]), q, inputs))
                if hit is None:
                    self.ctx.ask(("rank", int(self.r[p]), q, inputs))
                    continue
                slots = np.flatnonzero(s.alive[d, p, q])
                order[d, p, q] = np.concatenate([slots[list(hit[0])], np.flatnonzero(~s.alive[d, p, q])])
                call = hit[1]
                cost[:, d, p, q, 0] = call.tokens_in, call.tokens_out, call.latency_s
        order = np.where(called[..., None], order, np.arange(N))
        s.reorder(order)
        s.alive &= ~called[..., None] | (np.arange(N) < self.keep)
        return self.charge(s, draws, called[..., None], cost, "rank", k[..., None]).max(axis=-1)
