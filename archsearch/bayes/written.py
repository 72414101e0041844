"""Model-written tests as the surrogate sees them: per test layer that writes its tests (a *writer*,
keyed like a judge) and question, the tests the cache holds (every writer call known) and, per
known answer, which of them it passes -- a bit per test, visible tests first, as the test layer
runs them (``techniques/unit_test.py``).

The runtime sets aside a written test that no judged candidate passes (a suspected wrong test), so
a verdict depends on the candidates judged together. ``counted_verdicts`` replays that rule exactly
for a set of known answers; ``pool_pass`` is each answer's verdict with the question's every known
answer judged together, the data the model's TPR and FPR for written tests are fitted to.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .objects import UNKNOWN, CallObs, Objects, key_ids

WRITTEN_KEYS = 1_000_000   # vote-key ids on written tests' inputs (but CANONICAL, MODAL_WRONG): apart from the visible ones
MAX_TESTS = 62   # tests per question a replay can hold as bits of one int64; more are drawn, not replayed


@dataclass(frozen=True)
class Written:
    """One writer's tests on one question: how many the sandbox runs (visible first), how many of
    them the model wrote, and the writer's calls."""

    n: int
    written: int
    calls: tuple[CallObs, ...]


@dataclass(frozen=True)
class Run:
    """One answer against one writer's tests: which passed, whether it ran at all, and its
    behaviour on the tests' inputs (what a vote by behaviour or agreement compares afterwards)."""

    passed: tuple[bool, ...]
    checked: bool
    behaviour: tuple[str, ...] | None
    answer: str | None

    @property
    def mask(self) -> int:
        return sum(1 << i for i, ok in enumerate(self.passed) if ok)

    def key(self) -> tuple[int, object]:
        """(level, key) of a vote by agreement: the behaviour, else the answer text, else nothing."""
        if self.behaviour is not None:
            return 2, ("behaviour", self.behaviour)
        return (1, ("answer", self.answer)) if self.answer is not None else (0, None)


@dataclass(frozen=True)
class WrittenArrays:
    """Per writer t, question q and known answer o."""

    known: np.ndarray        # [T, Q] every writer call is in the cache (and the tests fit in MAX_TESTS)
    n: np.ndarray            # [T, Q] tests run
    written: np.ndarray      # [T, Q] of which model-written (the last ones)
    mask: np.ndarray         # [T, Q, O] int64 bit i: passes test i
    checked: np.ndarray      # [T, Q, O] the answer ran (an empty answer does not)
    key: np.ndarray          # [T, Q, O] vote-key id by agreement (CANONICAL: the modal right key; others >= WRITTEN_KEYS)
    level: np.ndarray        # [T, Q, O] 2 behaviour, 1 answer text, 0 none
    pool: np.ndarray         # [T, Q, O] 1/0: the verdict with every known answer judged together; UNKNOWN
    right: np.ndarray        # [T, Q] the verdict on the question's right answers (their majority); UNKNOWN
    cost: np.ndarray         # [3, T, Q, K] tokens in, out, latency of writer call k
    alone: np.ndarray        # [T, Q, O] 1/0: the verdict judged by itself (every test counts, as a generator that
    #                          stops early judges each new sample); UNKNOWN
    right_alone: np.ndarray  # [T, Q] the same on the question's right answers (their majority); UNKNOWN

    @property
    def writers(self) -> int:
        return self.known.shape[0]

    def fresh(self, questions: int) -> WrittenArrays:
        """Nothing known, on ``questions`` new questions."""
        T = self.writers
        none = np.zeros((T, questions, 1), int)
        return WrittenArrays(np.zeros((T, questions), bool), np.zeros((T, questions), int), np.zeros((T, questions), int),
                             none.astype(np.int64), none.astype(bool), none, none, none + UNKNOWN,
                             np.full((T, questions), UNKNOWN), np.full((3, T, questions, 1), np.nan), none + UNKNOWN,
                             np.full((T, questions), UNKNOWN))


def counted_verdicts(mask: np.ndarray, checked: np.ndarray, judged: np.ndarray, n: np.ndarray,
                     written: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(verdict, share passed) per slot [..., N] as the test layer gives them to the ``judged`` slots
    judged together: visible tests always count, a written one only if some judged slot passes it
    (when more than one is judged); ``n``/``written`` [...] per set."""
    full = (np.left_shift(np.int64(1), n.astype(np.int64)) - 1)[..., None]
    visible = (np.left_shift(np.int64(1), (n - written).astype(np.int64)) - 1)[..., None]
    union = np.bitwise_or.reduce(np.where(judged, mask, 0), axis=-1)[..., None]
    several = (judged.sum(axis=-1) > 1)[..., None] & (written[..., None] > 0)
    counted = np.where(several, visible | (full & ~visible & union), full)
    total = np.bitwise_count(counted).astype(float)
    passed = np.bitwise_count(mask & counted)
    share = np.where(checked, passed / np.maximum(total, 1.0), 0.0)
    return checked & (total > 0) & (passed == total), share


def written_arrays(objects: Objects) -> WrittenArrays:
    T, Q = len(objects.judges.get("test", [])), objects.questions
    width = max([len(t) for t in objects.texts] + [1])
    K = max([len(w.calls) for w in objects.written.values()] + [1])
    known, n, written = np.zeros((T, Q), bool), np.zeros((T, Q), int), np.zeros((T, Q), int)
    mask, checked = np.zeros((T, Q, width), np.int64), np.zeros((T, Q, width), bool)
    key, level, pool = np.zeros((T, Q, width), int), np.zeros((T, Q, width), int), np.full((T, Q, width), UNKNOWN)
    right, cost = np.full((T, Q), UNKNOWN), np.full((3, T, Q, K), np.nan)
    alone, right_alone = np.full((T, Q, width), UNKNOWN), np.full((T, Q), UNKNOWN)
    for (t, q), w in objects.written.items():
        runs = [objects.runs.get((t, q, o)) for o in range(len(objects.texts[q]))]
        if w.n > MAX_TESTS or any(r is None for r in runs):
            continue
        known[t, q], n[t, q], written[t, q] = True, w.n, w.written
        for k, call in enumerate(w.calls):
            cost[:, t, q, k] = call.tokens_in, call.tokens_out, call.latency_s
        m = len(runs)
        mask[t, q, :m] = [r.mask for r in runs]
        checked[t, q, :m] = [r.checked for r in runs]
        level[t, q, :m] = [r.key()[0] for r in runs]
        ids = np.array(key_ids(objects, q, [r.key()[1] for r in runs]))
        key[t, q, :m] = np.where(ids >= 2, ids + WRITTEN_KEYS, ids)   # apart from the keys on the visible tests
        everyone = np.arange(width) < m
        verdict, _ = counted_verdicts(mask[t, q], checked[t, q], everyone, np.array(w.n), np.array(w.written))
        by_itself, _ = counted_verdicts(mask[t, q], checked[t, q], np.zeros(width, bool), np.array(w.n), np.array(w.written))
        pool[t, q, :m], alone[t, q, :m] = verdict[:m], by_itself[:m]
        correct = [objects.judged[q][o].correct for o in range(m)]
        for out, verdicts in ((right, verdict), (right_alone, by_itself)):
            right_ones = [bool(verdicts[o]) for o in range(m) if correct[o]]
            if right_ones:
                out[t, q] = int(2 * sum(right_ones) >= len(right_ones))
    return WrittenArrays(known, n, written, mask, checked, key, level, pool, right, cost, alone, right_alone)
