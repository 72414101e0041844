"""A generator that stops early, with the layers that decide when (``sequential.py`` of the
runtime): candidates of earlier layers are judged first, then samples are drawn one at a time.

- ``stop: accepted`` with a filter: stop at the first candidate the filter accepts; the filter's
  policy then keeps from everything judged.
- ``stop: settled`` with a vote: stop once the vote cannot change or its leader is sure
  (P(p1 > p2) under Beta(v1 + 1, v2 + 1) >= confidence); with a filter first, the vote counted is
  over the accepted candidates, and the filter's policy keeps from everything judged.

Calls run one after another: the step's latency is the sum of its calls' latencies.
"""

from __future__ import annotations

import numpy as np

from .generate import GenerateStep
from .state import Draws, State, Step, per_pipeline
from .verify import FilterStep
from .vote import BETA_LEAD, VoteStep


class SequentialStep(Step):
    kind = "sequential"

    def __init__(self, gen: GenerateStep, filt: FilterStep | None, vote: VoteStep | None, stop: str) -> None:
        super().__init__(gen.layers, gen.ctx)
        self.gen, self.filt, self.vote, self.stop = gen, filt, vote, stop
        self.confidence = per_pipeline([layer.params.confidence for layer in gen.layers], float)[..., 0]

    @property
    def adds(self) -> int:
        return self.gen.adds

    def layer_places(self) -> list[list[str]]:
        return [p for part in (self.gen, self.filt, self.vote) if part is not None for p in part.layer_places()]

    def apply(self, s: State, draws: Draws) -> np.ndarray:
        gen = self.gen
        window = slice(gen.offset, gen.offset + gen.adds)
        before = s.alive.copy()
        used, cost = gen.fill(s, draws, slice(None))
        own = np.zeros(s.alive.shape, bool)
        own[..., window] = used[None, :, None, :]
        n = used.sum(axis=1)[None, :, None]                                   # [1, P, 1] samples it may draw
        rank = np.cumsum(own, axis=-1)                                        # own sample k has rank k + 1
        pool = before | own
        if self.filt is not None:
            verdict, applies, judge_cost = self.filt.judge(s, draws, pool, alone=own)
            self.filt.annotate(s, pool)
            accepted = self.filt.accepted(verdict, applies) & pool
        if self.stop == "accepted":
            first = np.where(accepted & own, rank, np.iinfo(int).max).min(axis=-1)
            drawn = np.where((before & accepted).any(axis=-1), 0, np.minimum(n, first))
        else:
            drawn = self._settled(s, before, own, rank, accepted if self.filt is not None else pool, n)
        made = own & (rank <= drawn[..., None])
        judged = before | made
        serial = gen.charge(s, draws, made[..., window], cost, "generate").sum(axis=-1)
        s.alive = judged
        if self.filt is not None:
            serial += self.filt.pay(s, draws, judged, judge_cost).sum(axis=-1)
            self.filt.record(s, verdict, judged)
            s.alive = self.filt.keep(s, judged, verdict & judged, applies) & judged
        if self.vote is not None:
            s.alive = self.vote.winner(s, s.alive)
        return serial

    def _settled(self, s: State, before, own, rank, counted, n) -> np.ndarray:
        """Samples drawn when the vote over the ``counted`` candidates drawn so far was settled."""
        drawn = np.broadcast_to(n, s.alive.shape[:3]).copy()
        done = np.zeros(drawn.shape, bool)
        for k in range(1, int(n.max()) + 1):
            prefix = counted & (before | (own & (rank <= k)))
            v1, v2 = self.vote.tally(s, prefix)
            sure = (v1 > v2 + (n - k)) | (BETA_LEAD[np.minimum(v1, 64), np.minimum(v2, 64)] >= self.confidence)
            now = ~done & sure & prefix.any(axis=-1) & (k <= n)
            drawn = np.where(now, k, drawn)
            done |= now
        return drawn
