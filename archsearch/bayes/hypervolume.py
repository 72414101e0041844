"""Exact hypervolume gains of many candidate points over one front (every objective minimised).

The region the front dominates inside the reference box is a union of boxes; cut by every front
point's coordinates it is a grid of cells, each dominated or not. A candidate c adds the volume of
the undominated cells' parts inside its own box [c, reference]: per objective, the overlap of each
cell's interval with [c_k, r_k]; summed over the cells with one einsum for all candidates at once.
"""

from __future__ import annotations

import string

import numpy as np


def hypervolume(points: np.ndarray, reference: np.ndarray) -> float:
    """The volume the points dominate inside the box below ``reference``: their gains one by one."""
    points = np.asarray(points, float).reshape(-1, len(reference))
    total = 0.0
    for i in range(len(points)):
        total += float(gains(points[:i], points[i:i + 1], reference)[0])
    return total


def gains(front: np.ndarray, candidates: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """[C] how much each candidate alone would add to the hypervolume of ``front``."""
    front = np.asarray(front, float).reshape(-1, len(reference))
    candidates = np.asarray(candidates, float).reshape(-1, len(reference))
    ref = np.asarray(reference, float)
    front = front[(front < ref).all(axis=1)]
    dims = len(ref)
    edges = [np.unique(np.concatenate([front[:, k], [ref[k]]])) for k in range(dims)]
    lows = [np.concatenate([[-np.inf], e[:-1]]) for e in edges]      # cell k spans (lows[k][i], edges[k][i]]
    # a cell is dominated when some front point is at or below its lower corner in every objective
    dominated = np.zeros([len(e) for e in edges], bool)
    for p in front:
        masks = [lows[k] >= p[k] for k in range(dims)]
        dominated |= _outer(masks)
    free = ~dominated
    overlaps = []
    for k in range(dims):
        lo = np.maximum(lows[k][None, :], candidates[:, k][:, None])
        overlaps.append(np.clip(edges[k][None, :] - lo, 0.0, None))  # [C, cells along k]
    letters = string.ascii_lowercase[:dims]
    spec = ",".join(f"z{c}" for c in letters) + "," + letters + "->z"
    return np.einsum(spec, *overlaps, free.astype(float), optimize=True)


def mean_gains(front: np.ndarray, predicted: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """[C] each candidate's gain averaged over rows of ``predicted`` [R, C, K]. A candidate predicted
    alike in every row (a pipeline the cache replays whole) is measured once."""
    rows, count, dims = predicted.shape
    alike = np.all(predicted == predicted[:1], axis=(0, 2))
    out = np.empty((rows, count))
    out[:, alike] = gains(front, predicted[0, alike], reference)
    varies = np.flatnonzero(~alike)
    out[:, varies] = gains(front, predicted[:, varies].reshape(-1, dims), reference).reshape(rows, len(varies))
    return out.mean(axis=0)


def _outer(masks: list[np.ndarray]) -> np.ndarray:
    out = masks[0]
    for m in masks[1:]:
        out = out[..., None] & m
    return out
