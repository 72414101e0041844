"""Non-call time per step: the wall time a layer takes beyond its calls (reading the cache, a vote,
a program run in the sandbox, waiting for a sandbox slot or for the event loop).

The runtime counts a step as the longer of its layers' wall time and its slowest call's recorded
latency (``pipeline.Trace.latency_s``); in a layer that paid no call the whole wall time is non-call
time, and that is what a search measures as it replays its pool. Each evaluation keeps its layers'
times by place (``spec.layer_places``: ``kind:reach@own:prefix``: the layer's kind; ``own``, a
digest of the layer itself (its params and model); ``reach``, the most candidates that can reach
it; ``prefix``, a digest of the pipeline up to it). The model draws each simulated layer's non-call
time from one evaluation's times, resampled question by question, at the most specific level that
speaks for itself, as a Chinese restaurant seats a guest at a known table: at the layer's place with
probability n / (n + 1) when n evaluations reached it; else at its shape (``kind:reach@own``, the
same layer reached by as many candidates, in any pipeline) with m / (m + 1) when m evaluations
measured it; else at the layer itself at any reach, scaled as ``reach ** beta`` (beta per kind,
fitted across the reaches a layer was measured at), with k / (k + 1); else at its kind (any kind's,
for a kind never measured). The step's latency is the longer of it and the slowest call:

    latency(step) = max(slowest call, t),   t ~ the times one evaluation measured at that level

What a layer does beyond its calls grows with the candidates it is handed (an LLM judge's cache
reads, the sandbox runs of a test layer) and depends on the layer itself (the task's tests or a
model's; a vote by text or by behaviour). On the HumanEval test pool (``spaces/archon.yaml``), of
the variance of log median time between pipelines' layers of a kind, the layer itself scaled by
reach leaves 19% for test layers, 20% for LLM judges, 13% for votes (its shape: 18%, 19%, 13%),
with 3-9 layers per kind against 19-60 shapes: a held-out pipeline rarely shares a place with the
few evaluated ones, often its layers.

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
    """One place's, shape's, layer's or kind's times, evaluation after evaluation: ``values[starts[r]:starts[r] + sizes[r]]``."""

    values: np.ndarray
    starts: np.ndarray
    sizes: np.ndarray

    @classmethod
    def of(cls, arrays: list[np.ndarray]) -> Runs:
        sizes = np.array([len(a) for a in arrays])
        return cls(np.concatenate(arrays), np.concatenate([[0], np.cumsum(sizes)[:-1]]), sizes)


@dataclass(frozen=True)
class NonCallTimes:
    """The times each evaluation measured, per layer place, pooled per shape, per layer (scaled to one
    candidate: ``exponents``) and per kind; ``anything`` pools every kind's."""

    by_place: dict[str, Runs] = field(default_factory=dict)
    by_shape: dict[str, Runs] = field(default_factory=dict)
    by_layer: dict[str, Runs] = field(default_factory=dict)
    by_kind: dict[str, Runs] = field(default_factory=dict)
    anything: Runs | None = None
    exponents: dict[str, float] = field(default_factory=dict)   # per kind, beta of t ~ reach ** beta

    @classmethod
    def of(cls, measured: Iterable[dict[str, list[float]]]) -> NonCallTimes:
        """From evaluations' ``{place: [seconds]}``, oldest first. A key without a shape
        (``kind:prefix``) or without a digest (``kind``) was recorded by an older version: it counts
        for what it names."""
        evaluations = [[(key, *_parts(key), np.asarray(xs, float)) for key, xs in times.items() if len(xs)]
                       for times in measured]
        exponents = _exponents([entry[1:] for entries in evaluations for entry in entries])
        places: dict[str, list[np.ndarray]] = {}
        pooled: dict[str, dict[str, list[np.ndarray]]] = {"shape": {}, "layer": {}, "kind": {}}
        for entries in evaluations:
            merged: dict[str, dict[str, list[np.ndarray]]] = {"shape": {}, "layer": {}, "kind": {}}
            for key, kind, reach, layer, xs in entries:
                if ":" in key:   # not a bare kind
                    places.setdefault(key, []).append(xs)
                if layer is not None:
                    merged["shape"].setdefault(key.rsplit(":", 1)[0], []).append(xs)
                    merged["layer"].setdefault(layer, []).append(xs / max(reach, 1) ** exponents[kind])
                merged["kind"].setdefault(kind, []).append(xs)
            for level, groups in merged.items():   # one evaluation's times of a shape, layer or kind, wherever it was
                for name, arrays in groups.items():
                    pooled[level].setdefault(name, []).append(np.concatenate(arrays))
        if not pooled["kind"]:
            return cls()
        kept = {level: {name: Runs.of(arrays[-KEPT:]) for name, arrays in groups.items()} for level, groups in pooled.items()}
        return cls({place: Runs.of(arrays[-KEPT:]) for place, arrays in places.items()}, kept["shape"], kept["layer"],
                   kept["kind"], Runs.of([a for arrays in pooled["kind"].values() for a in arrays[-KEPT:]]), exponents)

    def __bool__(self) -> bool:
        return bool(self.by_kind)

    def draw(self, layers: Iterable[list[str]], run: np.ndarray, Q: int, rng: np.random.Generator) -> np.ndarray:
        """[D, P, Q] the longest of one draw per layer (the layers of a step run together), each
        layer given as its place in each of the P pipelines. ``run`` [D, P, 4], uniforms per pipeline
        and draw, the same for every layer and step of the pipeline (what slows one layer of a run --
        the machine's load, the event loop's other questions -- slows the others): the first picks
        one evaluation, the others whether the layer's place, its shape, the layer itself speak for
        themselves. A level that n evaluations measured does with probability n / (n + 1), else the
        next: a place or shape seen once still leaves room for the spread between runs that the
        levels above have seen."""
        out = None
        for places in layers:
            u = rng.random(run.shape[:2] + (Q,))
            t = np.empty(u.shape)
            for place in dict.fromkeys(places):
                cols = np.flatnonzero([p == place for p in places])
                kind, reach, layer = _parts(place)
                levels = [(self.by_kind.get(kind) or self.anything, 0, 1.0)]
                if layer is not None:
                    levels += [(self.by_layer.get(layer), 3, max(reach, 1) ** self.exponents.get(kind, 0.0)),
                               (self.by_shape.get(place.rsplit(":", 1)[0]), 2, 1.0)]
                levels.append((self.by_place.get(place), 1, 1.0))
                chosen = np.zeros((len(run), len(cols)), int)   # per draw and pipeline: the most specific level that speaks
                for k, (own, which, _) in enumerate(levels[1:], 1):
                    if own is not None:
                        n = len(own.sizes)
                        chosen[run[:, cols, which] < n / (n + 1)] = k
                for k, (own, _, scale) in enumerate(levels):
                    d, c = np.nonzero(chosen == k)
                    if len(d):   # only the questions of the runs that chose this level are picked
                        t[d, cols[c]] = _pick(own, run[d, cols[c], :1], u[d, cols[c]]) * scale
            out = t if out is None else np.maximum(out, t)
        return out


def _parts(key: str) -> tuple[str, int, str | None]:
    """(kind, reach, layer) of a place ``kind:reach@own:prefix``; the layer (``kind:own``) is None for
    a key an older version wrote (``kind:prefix`` or ``kind``)."""
    parts = key.split(":")
    if len(parts) < 3 or "@" not in parts[1]:
        return parts[0], 0, None
    reach, own = parts[1].split("@", 1)
    return parts[0], int(reach), f"{parts[0]}:{own}"


def _exponents(entries: list[tuple[str, int, str | None, np.ndarray]]) -> dict[str, float]:
    """Per kind, beta of t ~ reach ** beta: the slope of log median time on log reach within each
    layer measured at several reaches, shrunk toward 1/2 by one unit of log-reach spread (a kind
    never measured at two reaches keeps 1/2). On the HumanEval pools it came out 0.8 for LLM judges,
    0.55-0.6 for tests and cache reads, 0.2-0.3 for votes."""
    points: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for kind, reach, layer, xs in entries:
        if layer is not None:
            points.setdefault((kind, layer), []).append((np.log(max(reach, 1)), np.log(max(float(np.median(xs)), 1e-5))))
    sums: dict[str, np.ndarray] = {}
    for (kind, _), xy in points.items():
        x, y = np.array(xy).T
        x, y = x - x.mean(), y - y.mean()
        sums[kind] = sums.get(kind, np.zeros(2)) + [x @ y, x @ x]
    kinds = {entry[0] for entry in entries}
    return {kind: float((sums[kind][0] + 0.5) / (sums[kind][1] + 1.0)) if kind in sums else 0.5 for kind in kinds}


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
