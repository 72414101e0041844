"""``critique``: a model reviews each candidate (one call each); the critique travels with the
candidate into later rankings and fusions (a covariate of the fuser's curve)."""

from __future__ import annotations

import numpy as np

from .state import Draws, State, Step, per_pipeline


class CritiqueStep(Step):
    kind = "critique"

    def __init__(self, layers: list, ctx) -> None:
        super().__init__(layers, ctx)
        self.c = np.array([ctx.judges["critique"][layer.key] for layer in layers])

    def apply(self, s: State, draws: Draws) -> np.ndarray:
        a = self.ctx.arrays
        c4, q4, safe = self.c[None, :, None, None], np.arange(a.questions)[None, None, :, None], np.maximum(s.obj, 0)
        known = s.known & a.critiqued[c4, q4, safe]
        cost = np.where(known[None], a.critique_cost[:, c4, q4, safe], np.nan)
        lat = self.charge(s, draws, s.alive, cost, "critique")
        s.critic = np.where(s.alive, per_pipeline(self.c), s.critic)
        return lat.max(axis=-1, initial=0.0)
