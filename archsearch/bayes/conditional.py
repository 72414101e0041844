"""The predictive distribution of a pipeline's score on the search questions, given the pool.

A pipeline of the sampling family on question q uses samples 0..n-1 of its generator's cell. The
samples the search already bought are known exactly (their correctness, visible-test pass rate and
answer); only the rest are uncertain. So the score of a pipeline not yet evaluated is simulated
per posterior draw: known samples are replayed, missing ones are drawn from the model (correct with
the cell's accuracy p, a draw from Beta(mu phi + y, (1 - mu) phi + n - y) given what it showed;
accepted with the verifier's TPR/FPR), and the pipeline's own rules (keep passing / best, the
none-passed policy, plurality vote with ties to the earliest, first survivor) pick the answer.
A pipeline whose samples are all known gets a point mass at its measured score; the closed forms in
``predict.py`` are the same model without the conditioning.

Votes need to know when two samples give the same answer. Wrong answers almost never coincide
(1 of 337 pairs in the HumanEval pool); correct ones sometimes do (57 of 484 pairs) — far from the
"all correct answers agree" of the closed form — and it is a property of the question (a one-line
answer is written the same way every time, a loop rarely is). A drawn correct sample joins the
cell's canonical correct answer with probability kappa, otherwise it is new; kappa**2 is the chance
two correct samples agree, per cell Beta(s m + same, s (1 - m) + pairs - same): the pool-wide
cell-averaged rate m with the weight s = 2 pairs, updated by the cell's own correct pairs.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from .predict import ABSTAIN, FALLBACK, PipelineFeatures

CANONICAL, FRESH_CORRECT, FRESH_WRONG = 0, 1_000, 2_000


@dataclass(frozen=True)
class Judged:
    """One sample as the scorer and the visible tests saw it."""

    correct: bool
    rate: float | None                   # share of visible tests passed (None: the question has none)
    answer: str | None                   # the normalised extracted answer: what a vote by answer compares
    behaviour: tuple[str, ...] | None = None  # values on the visible tests' inputs: what a vote by behaviour compares

    @property
    def visible(self) -> bool | None:
        return None if self.rate is None else self.rate == 1.0

    def vote_key(self, by_behaviour: bool) -> tuple[int, object]:
        """(level, key) as the vote layer sees it: among survivors only the highest level votes."""
        if by_behaviour and self.behaviour is not None:
            return 2, ("behaviour", self.behaviour)
        return (1, ("answer", self.answer)) if self.answer is not None else (0, None)


@dataclass(frozen=True)
class KnownSamples:
    """Per (generator, question): how many samples are known, and for each its attributes."""

    m: np.ndarray          # [G, Q] known samples
    correct: np.ndarray    # [G, Q, M] bool
    rate: np.ndarray       # [G, Q, M] share of visible tests passed (0 when none)
    cluster: np.ndarray    # [2, G, Q, M] vote-key id within the cell (by answer, by behaviour); CANONICAL
                           # for the modal correct one
    level: np.ndarray      # [2, G, Q, M] which keys vote: only the survivors of the highest level do
    testable: np.ndarray   # [Q] bool: the question has visible tests (elsewhere a test layer keeps all)
    same_pairs: np.ndarray  # [2, G, Q] pairs of known correct samples with the same key
    pairs: np.ndarray       # [G, Q] pairs of known correct samples

    @classmethod
    def from_judged(cls, judged: list[list[list[Judged]]], testable: np.ndarray) -> KnownSamples:
        G, Q = len(judged), len(judged[0]) if judged else 0
        M = max([len(cell) for cells in judged for cell in cells] + [1])
        m = np.zeros((G, Q), int)
        correct, rate = np.zeros((G, Q, M), bool), np.zeros((G, Q, M))
        cluster, level = np.zeros((2, G, Q, M), int), np.zeros((2, G, Q, M), int)
        same, pairs = np.zeros((2, G, Q)), np.zeros((G, Q))
        for g, cells in enumerate(judged):
            for q, cell in enumerate(cells):
                m[g, q] = len(cell)
                for i, j in enumerate(cell):
                    correct[g, q, i], rate[g, q, i] = j.correct, j.rate or 0.0
                k = sum(j.correct for j in cell)
                pairs[g, q] = k * (k - 1) // 2
                for mode in (0, 1):
                    keys = [j.vote_key(bool(mode)) for j in cell]
                    right = Counter(key for (_, key), j in zip(keys, cell) if j.correct)
                    ids: dict = {right.most_common(1)[0][0]: CANONICAL} if right else {}
                    for i, (lvl, key) in enumerate(keys):
                        level[mode, g, q, i] = lvl
                        cluster[mode, g, q, i] = ids.setdefault(key, len(ids) + 1)
                    same[mode, g, q] = sum(c * (c - 1) // 2 for c in right.values())
        return cls(m, correct, rate, cluster, level, np.asarray(testable, bool), same, pairs)

    def determined(self, features: PipelineFeatures) -> np.ndarray:
        """[P] True where every sample the pipeline uses is already known."""
        return (self.m[features.g] >= features.n[:, None]).all(axis=1)

    def kappa(self, draws: int, rng: np.random.Generator, mode: int = 0, weight: float = 2.0) -> np.ndarray:
        """[draws, G, Q] chance a new correct sample repeats the cell's canonical correct key
        (mode 0: by answer text, 1: by behaviour)."""
        has = self.pairs > 0
        same = self.same_pairs[mode]
        mean = float(np.mean(same[has] / self.pairs[has])) if has.any() else 0.1
        mean = min(max(mean, 0.01), 0.99)
        a, b = weight * mean + same, weight * (1 - mean) + self.pairs - same
        return np.sqrt(rng.beta(a, b, size=(draws,) + a.shape))


def _cell_state(known: KnownSamples, features: PipelineFeatures, N: int):
    """Known attributes laid out per [P, Q, N] (zeros beyond what is known)."""
    M = known.correct.shape[2]
    width = max(N, M)
    pad = [(0, 0), (0, 0), (0, width - M)]
    sl = (features.g, slice(None), slice(0, N))
    mode = features.by_behaviour()[:, None, None]
    cluster = np.where(mode, np.pad(known.cluster[1], pad)[sl], np.pad(known.cluster[0], pad)[sl])
    level = np.where(mode, np.pad(known.level[1], pad)[sl], np.pad(known.level[0], pad)[sl])
    return np.pad(known.correct, pad)[sl], np.pad(known.rate, pad)[sl], cluster, level, known.m[features.g]


def simulate_scores(posterior, features: PipelineFeatures, known: KnownSamples, rng: np.random.Generator,
                    draws: np.ndarray | None = None, chunk: int = 25) -> np.ndarray:
    """Realised search-split score per draw and pipeline, [D, P], conditioned on the known samples."""
    idx = np.arange(posterior.draws) if draws is None else np.asarray(draws)
    N = int(features.n.max())
    k_correct, k_rate, k_cluster, k_level, m = _cell_state(known, features, N)
    by_behaviour = features.by_behaviour()
    position = np.arange(N)
    is_known = position[None, None, :] < m[:, :, None]                    # [P, Q, N]
    used = position[None, None, :] < features.n[:, None, None]            # [P, 1, N]
    kappa = np.where(by_behaviour[None, :, None], known.kappa(len(idx), rng, 1)[:, features.g],
                     known.kappa(len(idx), rng, 0)[:, features.g])        # [D, P, Q]
    drawn_level = np.where(by_behaviour[:, None] & known.testable[None, :], 2, 1)[:, :, None]  # [P, Q, 1]
    best = np.zeros(len(features), bool) if features.best is None else features.best.astype(bool)
    out = []
    for start in range(0, len(idx), chunk):
        d = idx[start:start + chunk]
        skill = posterior.theta[d][:, features.g][:, :, None] - posterior.b[d][:, None, :]   # [d, P, Q]
        p = posterior.cell_p(rng, d)[:, features.g]
        shape = skill.shape + (N,)
        correct = np.where(is_known, k_correct, rng.random(shape) < p[..., None])
        if posterior.tau.shape[1]:
            v = np.maximum(features.v, 0)
            c = 1 / (1 + np.exp(-posterior.tau[d][:, v]))[:, :, None, None]
            f = 1 / (1 + np.exp(-(posterior.gamma[d][:, v][:, :, None] - posterior.lam[d][:, v][:, :, None] * skill)))
            drawn_pass = rng.random(shape) < np.where(correct, c, f[..., None])
        else:
            drawn_pass = np.zeros(shape, bool)
        rate = np.where(is_known, k_rate, drawn_pass.astype(float))
        joins = rng.random(shape) < kappa[start:start + len(d)][..., None]
        fresh = np.where(correct, np.where(joins, CANONICAL, FRESH_CORRECT + position), FRESH_WRONG + position)
        cluster = np.where(is_known, k_cluster, fresh)
        level = np.where(is_known, k_level, drawn_level)
        out.append(_select(correct, rate, cluster, level, used, features, best, known.testable))
    return np.concatenate(out, axis=0).mean(axis=2)


def _select(correct, rate, cluster, level, used, features: PipelineFeatures, best, testable) -> np.ndarray:
    """Apply each pipeline's test / vote rules to the samples: [d, P, Q] 1.0 where it answers right."""
    P = len(features)
    tested = (features.v >= 0)[None, :, None, None] & np.asarray(testable, bool)[None, None, :, None]
    passing = (rate == 1.0) & used
    any_pass = passing.any(axis=-1, keepdims=True)
    top = np.where(used, rate, -1.0).max(axis=-1, keepdims=True)
    policy = features.policy[None, :, None, None]
    first = np.arange(correct.shape[-1]) == 0
    none_passed = np.where(best[None, :, None, None], used & (rate == top),
                           np.where(policy == ABSTAIN, False, np.where(policy == FALLBACK, used & first, used)))
    survivors = np.where(tested, np.where(any_pass, passing, none_passed), used)
    top_level = np.where(survivors, level, -1).max(axis=-1, keepdims=True)
    voters = survivors & (level == top_level)
    same = (cluster[..., :, None] == cluster[..., None, :]) & voters[..., None, :]
    count = np.where(voters, same.sum(axis=-1), -1)
    N = correct.shape[-1]
    winner_vote = np.argmax(count * (N + 1) - np.arange(N), axis=-1)       # ties: the earliest sample
    winner_first = np.argmax(survivors, axis=-1)
    winner = np.where(features.vote.astype(bool).reshape(1, P, 1), winner_vote, winner_first)
    chosen = np.take_along_axis(correct, winner[..., None], axis=-1)[..., 0]
    return np.where(survivors.any(axis=-1), chosen, False).astype(float)
