"""What the cache knows, as arrays: for the model fit (``observations``) and for replaying
pipelines (``KnownArrays``: per generator, question and sample index, what is known and what not)."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass

import numpy as np

from .model import Observations

CANONICAL = 0   # vote-key id of a question's modal right answer
MODAL_WRONG = 1  # ... and of its modal wrong answer; other keys from 2 up, drawn ones far above
UNKNOWN = -1


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


def model_index(generators) -> np.ndarray:
    """[G] one index per distinct model (price aside): greedy and sampled settings of a model share it."""
    ids: dict[str, int] = {}
    keys = [json.dumps(g.model.model_dump(exclude={"price", "timeout_s"}), sort_keys=True) for g in generators]
    return np.array([ids.setdefault(k, len(ids)) for k in keys], int)


@dataclass(frozen=True)
class KnownArrays:
    """Per (generator g, question q, sample i < M): what replay needs. ``m[g, q]`` samples are known."""

    m: np.ndarray            # [G, Q]
    correct: np.ndarray      # [G, Q, M] bool
    rate: np.ndarray         # [G, Q, M] share of visible tests passed (0 when none)
    cluster: np.ndarray      # [2, G, Q, M] vote-key id per question (0: by answer, 1: by behaviour)
    level: np.ndarray        # [2, G, Q, M] only the survivors at the highest level vote
    verdict: np.ndarray      # [J, G, Q, M] LLM judge j's verdict: 1, 0, or UNKNOWN
    gen_cost: np.ndarray     # [3, G, Q, M] tokens in, tokens out, latency of the sample's call (nan: unknown)
    verdict_cost: np.ndarray  # [3, J, G, Q, M] the same for judge j's call on it
    testable: np.ndarray     # [Q]
    same_pairs: np.ndarray   # [2 right/wrong, 2 mode, G, Q] pairs of known samples of that outcome with one key
    pairs: np.ndarray        # [2 right/wrong, G, Q] pairs of known samples of that outcome
    mute: tuple[int, int] = (0, 0)   # wrong samples on testable questions without a behaviour, of all such

    @property
    def questions(self) -> int:
        return len(self.testable)

    def pool_rate(self, outcome: int, mode: int) -> float:
        """How often two known samples of one outcome (0 right, 1 wrong) share a vote key, averaged
        over the cells that have a pair (by text rarely, by behaviour often -- wrong programs too)."""
        has = self.pairs[outcome] > 0
        if not has.any():
            return [[0.1, 0.9], [0.02, 0.3]][outcome][mode]
        mean = float(np.mean(self.same_pairs[outcome, mode][has] / self.pairs[outcome][has]))
        return min(max(mean, 0.01), 0.99)

    def agreement(self, draws: int, rng: np.random.Generator, outcome: int, mode: int, weight: float = 2.0) -> np.ndarray:
        """[draws, G, Q] chance a new sample of that outcome repeats its question's modal key of the same
        outcome: a Beta around the pool's rate, updated by the cell's own pairs (its square root, so
        two drawn samples agree at the rate itself)."""
        mean, same, pairs = self.pool_rate(outcome, mode), self.same_pairs[outcome, mode], self.pairs[outcome]
        a, b = weight * mean + same, weight * (1 - mean) + pairs - same
        return np.sqrt(rng.beta(a, b, size=(draws,) + a.shape))

    @property
    def mute_rate(self) -> float:
        """How often a wrong program shows no behaviour (it raised on every visible input)."""
        return (self.mute[0] + 1) / (self.mute[1] + 4)

    @classmethod
    def fresh(cls, like: KnownArrays, questions: int, testable: np.ndarray) -> KnownArrays:
        """Nothing known, on ``questions`` new questions (for predictions beyond the search split);
        agreement rates keep the pool's average."""
        G, J = like.m.shape[0], like.verdict.shape[0]
        pairs = np.full((2, G, questions), 10.0)   # a pool-strength prior at the pool's rates
        same = np.stack([np.stack([pairs[o] * like.pool_rate(o, mode) for mode in (0, 1)]) for o in (0, 1)])
        empty = np.zeros((G, questions, 1))
        return cls(np.zeros((G, questions), int), empty.astype(bool), empty, np.zeros((2, G, questions, 1), int),
                   np.zeros((2, G, questions, 1), int), np.full((J, G, questions, 1), UNKNOWN),
                   np.full((3, G, questions, 1), np.nan), np.full((3, J, G, questions, 1), np.nan),
                   np.asarray(testable, bool), same, pairs, like.mute)


def known_arrays(known) -> KnownArrays:
    G, Q = len(known.generators), len(known.testable)
    J = len(known.judges["verify"])
    M = max([len(cell) for cells in known.samples for cell in cells] + [1])
    m = np.array([[len(cell) for cell in cells] for cells in known.samples], int).reshape(G, Q)
    correct, rate = np.zeros((G, Q, M), bool), np.zeros((G, Q, M))
    cluster, level = np.zeros((2, G, Q, M), int), np.zeros((2, G, Q, M), int)
    same, pairs = np.zeros((2, 2, G, Q)), np.zeros((2, G, Q))
    mute = [0, 0]
    gen_cost = np.full((3, G, Q, M), np.nan)
    for q in range(Q):
        cells = [known.samples[g][q] for g in range(G)]
        for mode in (0, 1):
            keys = [[s.judged.vote_key(bool(mode)) for s in cell] for cell in cells]
            ids: dict = {}
            for outcome, reserved in ((True, CANONICAL), (False, MODAL_WRONG)):
                seen = Counter(key for cell, ks in zip(cells, keys) for s, (_, key) in zip(cell, ks)
                               if s.judged.correct == outcome)
                if seen and seen.most_common(1)[0][0] not in ids:
                    ids[seen.most_common(1)[0][0]] = reserved
            for g, (cell, ks) in enumerate(zip(cells, keys)):
                for i, (lvl, key) in enumerate(ks):
                    level[mode, g, q, i] = lvl
                    cluster[mode, g, q, i] = ids.setdefault(key, len(ids) + 2)
                for o, outcome in enumerate((True, False)):
                    counts = Counter(key for s, (_, key) in zip(cell, ks) if s.judged.correct == outcome)
                    same[o, mode, g, q] = sum(c * (c - 1) // 2 for c in counts.values())
        for g, cell in enumerate(cells):
            k = sum(s.judged.correct for s in cell)
            pairs[0, g, q], pairs[1, g, q] = k * (k - 1) // 2, (len(cell) - k) * (len(cell) - k - 1) // 2
            if known.testable[q]:
                wrong = [s for s in cell if not s.judged.correct]
                mute[0] += sum(s.judged.behaviour is None for s in wrong)
                mute[1] += len(wrong)
            for i, s in enumerate(cell):
                correct[g, q, i], rate[g, q, i] = s.judged.correct, s.judged.rate or 0.0
                gen_cost[:, g, q, i] = s.call.tokens_in, s.call.tokens_out, s.call.latency_s
    verdict = np.full((J, G, Q, M), UNKNOWN)
    verdict_cost = np.full((3, J, G, Q, M), np.nan)
    for (j, g, q, i), (ok, call) in known.verdicts.items():
        verdict[j, g, q, i] = int(ok)
        verdict_cost[:, j, g, q, i] = call.tokens_in, call.tokens_out, call.latency_s
    return KnownArrays(m, correct, rate, cluster, level, verdict, gen_cost, verdict_cost, known.testable, same, pairs,
                       tuple(mute))


def observations(known, verifiable: bool) -> Observations:
    """The model's data: cells of samples with each verifier's judged counts, rank and fuse calls."""
    arrays = known_arrays(known)
    G, Q = arrays.m.shape
    J = arrays.verdict.shape[0]
    V = int(verifiable) + J
    rows = []
    for g in range(G):
        for q in range(Q):
            n = int(arrays.m[g, q])
            if not n:
                continue
            right = arrays.correct[g, q, :n]
            counts = []
            if verifiable:
                seen = n if arrays.testable[q] else 0
                passed = arrays.rate[g, q, :n] == 1.0
                counts.append((seen, int(right.sum()) if seen else 0, int((passed & right).sum()) if seen else 0,
                               int((passed & ~right).sum()) if seen else 0))
            for j in range(J):
                v = arrays.verdict[j, g, q, :n]
                judged = v != UNKNOWN
                counts.append((int(judged.sum()), int((right & judged).sum()), int((right & (v == 1)).sum()),
                               int((~right & (v == 1)).sum())))
            rows.append((q, g, n, int(right.sum()), counts))
    c = len(rows)
    jn, jy, tp, fp = (np.zeros((c, V), int) for _ in range(4))
    for r, (*_, counts) in enumerate(rows):
        for v, (a, b, t, f) in enumerate(counts):
            jn[r, v], jy[r, v], tp[r, v], fp[r, v] = a, b, t, f
    names = (["visible tests"] if verifiable else []) + [j.model.id for j in known.judges["verify"]]
    rank_rows = []
    width = 2
    for (r, g, n, q), (order, _) in known.ranks.items():
        if arrays.m[g, q] >= n and n >= 2:
            rank_rows.append((r, arrays.correct[g, q, :n].astype(float), order[0], order[1]))
            width = max(width, n)
    R = len(rank_rows)
    rank_y, rank_valid = np.zeros((R, width)), np.zeros((R, width), bool)
    for k, (_, y, _, _) in enumerate(rank_rows):
        rank_y[k, : len(y)], rank_valid[k, : len(y)] = y, True
    fuse_rows = [(f, q, key[1] if key[2] is None else key[3], m, float(key[4] is not None), float(correct))
                 for (f, key, q), (correct, m, _) in known.fused.items()]
    fuse = np.array(fuse_rows, float).reshape(-1, 6)
    return Observations(
        q=np.array([r[0] for r in rows], int), g=np.array([r[1] for r in rows], int), n=np.array([r[2] for r in rows], int),
        y=np.array([r[3] for r in rows], int), tp=tp, fp=fp, seen=jn > 0, judged_n=jn, judged_y=jy, n_questions=Q,
        n_generators=G, n_verifiers=V, generator_names=[g.key for g in known.generators], verifier_names=names,
        generator_model=model_index(known.generators),
        rank_r=np.array([r[0] for r in rank_rows], int), rank_y=rank_y, rank_valid=rank_valid,
        rank_first=np.array([r[2] for r in rank_rows], int), rank_second=np.array([r[3] for r in rank_rows], int),
        n_rankers=len(known.judges["rank"]),
        fuse_f=fuse[:, 0].astype(int), fuse_q=fuse[:, 1].astype(int), fuse_k=fuse[:, 2], fuse_m=fuse[:, 3],
        fuse_crit=fuse[:, 4], fuse_y=fuse[:, 5], n_fusers=len(known.judges["fuse"]))
