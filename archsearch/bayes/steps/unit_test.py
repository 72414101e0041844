"""``test`` with the task's visible tests: a candidate passes when every test passes (a known
answer's pass rate was measured; a drawn one passed with the tests' TPR or FPR when it was made).
Keeps the passing ones (or those passing the most, or all, annotated); questions without visible
tests are left as they are."""

from __future__ import annotations

import numpy as np

from .state import Draws, State, per_pipeline
from .verify import FilterStep


class TestStep(FilterStep):
    kind = "test"

    @classmethod
    def covers(cls, params) -> bool:
        return params.source == "task"

    def __init__(self, layers: list, ctx) -> None:
        super().__init__(layers, ctx)
        self.best = per_pipeline([layer.params.keep == "best" for layer in layers])
        self.all = per_pipeline([layer.params.keep == "all" for layer in layers])

    def judge(self, s: State, draws: Draws, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, None]:
        applies = np.broadcast_to(self.ctx.arrays.testable[None, None, :], mask.shape[:3]) & mask.any(axis=-1)
        return mask & (s.rate == 1.0) & applies[..., None], applies, None

    def keep(self, s: State, judged: np.ndarray, verdict: np.ndarray, applies: np.ndarray) -> np.ndarray:
        top = np.where(judged, s.rate, -1.0).max(axis=-1, keepdims=True)
        best = judged & (s.rate == top)
        kept = np.where(self.all, judged, np.where(self.best, best, super().keep(s, judged, verdict, applies)))
        return np.where(applies[..., None], kept, judged)
