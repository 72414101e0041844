"""Non-call time per step: the wall time a layer takes beyond its calls (reading the cache, a vote,
a program run in the sandbox, waiting for a sandbox slot or for the event loop).

The runtime counts a step as the longer of its layers' wall time and its slowest call's recorded
latency (``pipeline.Trace.latency_s``); in a layer that paid no call the whole wall time is non-call
time, and that is what a search measures as it replays its pool. The model draws each simulated
step's non-call time from the times measured for the layer kind -- one evaluation's, resampled
question by question (a kind not measured yet takes every kind's) -- and the step's latency is the
longer of it and the slowest call:

    latency(step) = max(slowest call, t),   t ~ the times one evaluation measured for the step's kind

Without it a pipeline the cache replays whole is predicted as a point (its calls' recorded
latencies) that the measured figure misses by the runtime's milliseconds.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

KEPT = 256   # the most recent evaluations kept


@dataclass(frozen=True)
class Runs:
    """One kind's times, evaluation after evaluation: ``values[starts[r]:starts[r] + sizes[r]]``."""

    values: np.ndarray
    starts: np.ndarray
    sizes: np.ndarray

    @classmethod
    def of(cls, arrays: list[np.ndarray]) -> Runs:
        sizes = np.array([len(a) for a in arrays])
        return cls(np.concatenate(arrays), np.concatenate([[0], np.cumsum(sizes)[:-1]]), sizes)


@dataclass(frozen=True)
class NonCallTimes:
    """Per layer kind, the times each evaluation measured; ``anything`` pools every kind's."""

    by_kind: dict[str, Runs] = field(default_factory=dict)
    anything: Runs | None = None

    @classmethod
    def of(cls, measured: Iterable[dict[str, list[float]]]) -> NonCallTimes:
        """From evaluations' ``{kind: [seconds]}``, oldest first."""
        runs: dict[str, list[np.ndarray]] = {}
        for times in measured:
            for kind, xs in times.items():
                if len(xs):
                    runs.setdefault(kind, []).append(np.asarray(xs, float))
        if not runs:
            return cls()
        kept = {kind: arrays[-KEPT:] for kind, arrays in runs.items()}
        return cls({kind: Runs.of(arrays) for kind, arrays in kept.items()},
                   Runs.of([a for arrays in kept.values() for a in arrays]))

    def __bool__(self) -> bool:
        return bool(self.by_kind)

    def draw(self, kinds: Iterable[str], run: np.ndarray, Q: int, rng: np.random.Generator) -> np.ndarray:
        """[D, P, Q] the longest of one draw per kind (the layers of a step run together). ``run``
        [D, P, 1], uniforms that pick one evaluation per pipeline and draw -- the same for every kind
        and step of the pipeline: what slows one layer of a run (the machine's load, the event loop's
        other questions) slows the others; its questions are resampled. A kind never measured takes
        every kind's evaluations."""
        out = None
        for kind in kinds:
            runs = self.by_kind.get(kind, self.anything)
            r = np.minimum((run * len(runs.sizes)).astype(int), len(runs.sizes) - 1)
            size = runs.sizes[r]
            pick = runs.starts[r] + np.minimum((rng.random(run.shape[:2] + (Q,)) * size).astype(int), size - 1)
            t = runs.values[pick]
            out = t if out is None else np.maximum(out, t)
        return out


def stream_beside(rng: np.random.Generator, k: int) -> np.random.Generator:
    """A generator for block ``k`` seeded from ``rng``'s state without drawing from it: non-call
    times leave every other simulated figure as it was without them."""
    state = int(hashlib.sha256(repr(rng.bit_generator.state).encode()).hexdigest()[:16], 16)
    return np.random.default_rng([state, k])
