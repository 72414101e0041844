"""How long a model's calls usually take, so a held request costs seconds, not minutes.

``LatencyTracker`` keeps the latencies of recent answered calls per (model, requested output
tokens) -- a verdict of 192 tokens and a sample of 512 are different animals -- and gives, once
enough are seen, an effective timeout (a high quantile times a margin, clamped between a floor and
the configured timeout) and the point after which a call is hedged (its p95): "The Tail at Scale"
(Dean and Barroso, CACM 2013). ``HedgeBucket`` keeps hedges to a few percent of calls.
"""

from __future__ import annotations

from collections import deque

import numpy as np


class LatencyTracker:
    def __init__(self, window: int = 200, min_calls: int = 10, quantile: float = 99.0, margin: float = 3.0,
                 floor_s: float = 2.0, hedge_quantile: float = 95.0, hedge_floor_s: float = 0.1) -> None:
        self.window, self.min_calls, self.quantile, self.margin = window, min_calls, quantile, margin
        self.floor_s, self.hedge_quantile, self.hedge_floor_s = floor_s, hedge_quantile, hedge_floor_s
        self.first_calls = 3          # from the third answered call on, a held request is not waited for in full
        self._seen: dict[tuple, deque] = {}

    def observe(self, key: tuple, seconds: float) -> None:
        self._seen.setdefault(key, deque(maxlen=self.window)).append(seconds)

    def _enough(self, key: tuple) -> np.ndarray | None:
        seen = self._seen.get(key)
        return np.asarray(seen) if seen is not None and len(seen) >= self.min_calls else None

    def timeout(self, key: tuple, configured: float | None) -> float | None:
        """The configured timeout until a few calls are seen; then margin x the quantile (with fewer
        than ``min_calls``: ten times the slowest), within [floor, configured]. None stays None."""
        seen = self._seen.get(key)
        if configured is None or seen is None or len(seen) < self.first_calls:
            return configured
        usual = self.margin * np.percentile(seen, self.quantile) if len(seen) >= self.min_calls else 10.0 * max(seen)
        return float(min(configured, max(self.floor_s, usual)))

    def hedge_after(self, key: tuple) -> float | None:
        """Seconds after which a call has run longer than almost every call (None: not enough seen);
        never under ``hedge_floor_s``: a second request cannot beat a network round trip, and on a
        near-instant backend a hedge would only race the event loop's own jitter."""
        seen = self._enough(key)
        return None if seen is None else max(self.hedge_floor_s, float(np.percentile(seen, self.hedge_quantile)))


class HedgeBucket:
    """A token bucket: each call adds ``rate`` tokens (up to ``capacity``); a hedge takes one."""

    def __init__(self, rate: float = 0.05, capacity: float = 3.0) -> None:
        self.rate, self.capacity, self.tokens = rate, capacity, capacity

    def call(self) -> None:
        self.tokens = min(self.capacity, self.tokens + self.rate)

    def take(self) -> bool:
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False
