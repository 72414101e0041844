"""Non-call time per step: the wall time a layer takes beyond its calls (reading the cache, a vote,
a program run in the sandbox, waiting for a sandbox slot or for the event loop).

The runtime counts a step as the longer of its layers' wall time and its slowest call's recorded
latency (``pipeline.Trace.latency_s``); in a layer that paid no call the whole wall time is non-call
time, and that is what a search measures as it replays its pool. Each evaluation keeps its layers'
times by place (``spec.layer_places``: the layer's kind and the pipeline up to it, which decide how
many candidates reach it and whose programs the sandbox runs). The model draws each simulated
layer's non-call time from one evaluation's times, resampled question by question: at the layer's
place with probability n / (n + 1) when n evaluations reached it (as a Chinese restaurant seats a
guest at a known table), else at its kind (any kind's, for a kind never measured). The step's
latency is the longer of it and the slowest call:

    latency(step) = max(slowest call, t),   t ~ the times one evaluation measured at the layer's place or kind

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
    """The times each evaluation measured, per layer place and pooled per kind; ``anything`` pools
    every kind's."""

    by_place: dict[str, Runs] = field(default_factory=dict)
    by_kind: dict[str, Runs] = field(default_factory=dict)
    anything: Runs | None = None

    @classmethod
    def of(cls, measured: Iterable[dict[str, list[float]]]) -> NonCallTimes:
        """From evaluations' ``{place: [seconds]}``, oldest first (a key without a digest is a kind:
        a study recorded before places were kept)."""
        places: dict[str, list[np.ndarray]] = {}
        kinds: dict[str, list[np.ndarray]] = {}
        for times in measured:
            merged: dict[str, list[np.ndarray]] = {}
            for key, xs in times.items():
                if len(xs):
                    if ":" in key:
                        places.setdefault(key, []).append(np.asarray(xs, float))
                    merged.setdefault(key.split(":")[0], []).append(np.asarray(xs, float))
            for kind, arrays in merged.items():   # one evaluation's times of a kind, wherever it was
                kinds.setdefault(kind, []).append(np.concatenate(arrays))
        if not kinds:
            return cls()
        kept = {kind: arrays[-KEPT:] for kind, arrays in kinds.items()}
        return cls({place: Runs.of(arrays[-KEPT:]) for place, arrays in places.items()},
                   {kind: Runs.of(arrays) for kind, arrays in kept.items()},
                   Runs.of([a for arrays in kept.values() for a in arrays]))

    def __bool__(self) -> bool:
        return bool(self.by_kind)

    def draw(self, layers: Iterable[list[str]], run: np.ndarray, Q: int, rng: np.random.Generator) -> np.ndarray:
        """[D, P, Q] the longest of one draw per layer (the layers of a step run together), each
        layer given as its place in each of the P pipelines. ``run`` [D, P, 2], uniforms per pipeline
        and draw, the same for every layer and step of the pipeline (what slows one layer of a run --
        the machine's load, the event loop's other questions -- slows the others): the first picks
        one evaluation, the second whether a layer's place speaks for itself. A place that n
        evaluations reached does with probability n / (n + 1), else the layer draws at its kind: a
        place seen once still leaves room for the spread between runs that its kind has seen."""
        out = None
        for places in layers:
            u = rng.random(run.shape[:2] + (Q,))
            t = np.empty(u.shape)
            for place in dict.fromkeys(places):
                cols = np.array([p == place for p in places])
                pooled = self.by_kind.get(place.split(":")[0]) or self.anything
                t[:, cols] = _pick(pooled, run[:, cols, :1], u[:, cols])
                own = self.by_place.get(place)
                if own is not None:
                    n = len(own.sizes)
                    t[:, cols] = np.where(run[:, cols, 1:] < n / (n + 1), _pick(own, run[:, cols, :1], u[:, cols]), t[:, cols])
            out = t if out is None else np.maximum(out, t)
        return out


def _pick(runs: Runs, run: np.ndarray, u: np.ndarray) -> np.ndarray:
    """The time of question ``u`` (a uniform) of the evaluation ``run`` (a uniform) picks, for each."""
    r = np.minimum((run * len(runs.sizes)).astype(int), len(runs.sizes) - 1)
    size = runs.sizes[r]
    return runs.values[runs.starts[r] + np.minimum((u * size).astype(int), size - 1)]


def stream_beside(rng: np.random.Generator, k: int) -> np.random.Generator:
    """A generator for block ``k`` seeded from ``rng``'s state without drawing from it: non-call
    times leave every other simulated figure as it was without them."""
    state = int(hashlib.sha256(repr(rng.bit_generator.state).encode()).hexdigest()[:16], 16)
    return np.random.default_rng([state, k])
