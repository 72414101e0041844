"""Replaying a call about several candidates (a ranking, a fusion): where every input is a known
answer (and a critique it carries is known), the exact inputs key the call, as they key the real
one; a call the cache holds is replayed, any other drawn -- and, during discovery, asked for."""

from __future__ import annotations

import numpy as np

from .state import State


def known_inputs(s: State, critiqued: np.ndarray) -> list[tuple[tuple[int, int, int], tuple]]:
    """[((d, p, q), inputs)] for every (draw, pipeline, question) whose candidates are all known
    answers; ``inputs`` is ((object, critic), ...) in slot order. ``critiqued`` [C, Q, O]."""
    D, P, Q, N = s.alive.shape
    critic_ok = np.ones(s.alive.shape, bool)
    if critiqued.size:
        c = np.maximum(s.critic, 0)
        critic_ok = (s.critic < 0) | critiqued[c, np.arange(Q)[None, None, :, None], np.maximum(s.obj, 0)]
    ok = (~s.alive | (s.known & critic_ok)).all(axis=-1) & s.alive.any(axis=-1)
    where = np.argwhere(ok)
    if not len(where):
        return []
    d, p, q = where.T
    rows = np.concatenate([s.alive[d, p, q], np.where(s.alive[d, p, q], s.obj[d, p, q], -2),
                           np.where(s.alive[d, p, q], s.critic[d, p, q], -2)], axis=1)
    unique, inverse = np.unique(rows, axis=0, return_inverse=True)
    keys = []
    for row in unique:
        alive = row[:N].astype(bool)
        keys.append(tuple(zip(row[N:2 * N][alive].tolist(), row[2 * N:][alive].tolist())))
    return [((int(a), int(b), int(c)), keys[i]) for a, b, c, i in zip(d, p, q, inverse.reshape(-1))]
