"""What the cache knows, per search question, as candidate *objects*: every answer text a known call
produced (a sample, a fused answer), deduplicated by text -- a text is what every later call about it
is keyed by -- with what its judging showed (``Judged``), and the calls about objects: LLM verdicts,
critiques, rankings and fusions. ``ObjectArrays`` is the same as arrays for the vectorised steps.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

CANONICAL = 0    # vote-key id of a question's modal right answer
MODAL_WRONG = 1  # ... and of its modal wrong answer; other keys from 2 up, drawn ones far above
FRESH = 10_000   # vote-key ids of drawn candidates: FRESH + slot, never equal to a known id
UNKNOWN = -1


@dataclass(frozen=True)
class Judged:
    """One answer text as the scorer and the visible tests saw it."""

    correct: bool
    rate: float | None                   # share of visible tests passed (None: the question has none)
    answer: str | None                   # the normalised extracted answer: what a vote by answer compares
    behaviour: tuple[str, ...] | None = None  # values on the visible tests' inputs: what a vote by behaviour compares

    def vote_key(self, by_behaviour: bool) -> tuple[int, object]:
        """(level, key) as the vote layer sees it: among survivors only the highest level votes."""
        if by_behaviour and self.behaviour is not None:
            return 2, ("behaviour", self.behaviour)
        return (1, ("answer", self.answer)) if self.answer is not None else (0, None)


@dataclass(frozen=True)
class CallObs:
    """One cached call, for the cost model: tokens and latency by (model, role, inputs in the prompt)."""

    model: str
    role: str
    inputs: int
    tokens_in: int
    tokens_out: int
    latency_s: float
    usd: float = 0.0
    created: float = 0.0     # when it was recorded: calls close in time share a recording session's load


Inputs = tuple[tuple[int, int], ...]   # a call's input candidates in order: (object, critic or -1)


@dataclass
class Objects:
    generators: list[str]                      # generator identities, in index order
    judges: dict[str, list[str]]               # role -> judge keys (verify, rank, critique, fuse)
    testable: np.ndarray                       # [Q] the question has visible tests
    texts: list[list[str]] = field(default_factory=list)          # [q][object]
    judged: list[list[Judged]] = field(default_factory=list)      # [q][object]
    samples: list[list[list[tuple[int, CallObs]]]] = field(default_factory=list)  # [g][q] known prefix: object, call
    verdicts: dict[tuple[int, int, int], tuple[bool, CallObs]] = field(default_factory=dict)   # (j, q, object)
    critiques: dict[tuple[int, int, int], tuple[str, CallObs]] = field(default_factory=dict)   # (c, q, object)
    ranks: dict[tuple[int, int, Inputs], tuple[tuple[int, ...], CallObs]] = field(default_factory=dict)
    fused: dict[tuple[int, int, Inputs, int], tuple[int, CallObs]] = field(default_factory=dict)  # (f, q, inputs, i)
    written: dict[tuple[int, int], Any] = field(default_factory=dict)   # (t, q): written.Written, the writer's tests
    runs: dict[tuple[int, int, int], Any] = field(default_factory=dict)  # (t, q, object): written.Run against them

    def __post_init__(self) -> None:
        Q = len(self.testable)
        self.texts = self.texts or [[] for _ in range(Q)]
        self.judged = self.judged or [[] for _ in range(Q)]
        self.samples = self.samples or [[[] for _ in range(Q)] for _ in self.generators]
        self._index = [{t: i for i, t in enumerate(texts)} for texts in self.texts]

    def extend(self, generators: list[str], judges: dict[str, list[str]]) -> None:
        """Add generators and judges not seen yet; indices already given stay (append only)."""
        for key in generators:
            if key not in self.generators:
                self.generators.append(key)
                self.samples.append([[] for _ in range(self.questions)])
        for role, keys in judges.items():
            mine = self.judges.setdefault(role, [])
            mine.extend(k for k in keys if k not in mine)

    @property
    def questions(self) -> int:
        return len(self.testable)

    def object_of(self, q: int, text: str) -> int | None:
        return self._index[q].get(text)

    def add(self, q: int, text: str, judged: Judged) -> int:
        if text not in self._index[q]:
            self._index[q][text] = len(self.texts[q])
            self.texts[q].append(text)
            self.judged[q].append(judged)
        return self._index[q][text]

    def calls(self) -> list[CallObs]:
        out = [c for cells in self.samples for cell in cells for _, c in cell]
        for table in (self.verdicts, self.critiques, self.ranks, self.fused):
            out += [v[1] for v in table.values()]
        return out + [call for w in self.written.values() for call in w.calls]


@dataclass(frozen=True)
class ObjectArrays:
    """Per question q and object o, per generator g and sample i < M: what the steps replay."""

    m: np.ndarray            # [G, Q] known samples
    sample: np.ndarray       # [G, Q, M] object of sample i (UNKNOWN beyond m)
    gen_cost: np.ndarray     # [3, G, Q, M] tokens in, tokens out, latency of the sample's call
    correct: np.ndarray      # [Q, O] bool
    rate: np.ndarray         # [Q, O] share of visible tests passed (0 when none)
    cluster: np.ndarray      # [2, Q, O] vote-key id (0: by answer, 1: by behaviour)
    level: np.ndarray        # [2, Q, O]
    verdict: np.ndarray      # [J, Q, O] 1, 0 or UNKNOWN
    verdict_cost: np.ndarray  # [3, J, Q, O]
    critiqued: np.ndarray    # [C, Q, O] the critique of the object is known
    critique_cost: np.ndarray  # [3, C, Q, O]
    testable: np.ndarray     # [Q]
    same_pairs: np.ndarray   # [2 right/wrong, 2 mode, G, Q] pairs of known samples of that outcome with one key
    pairs: np.ndarray        # [2 right/wrong, G, Q] pairs of known samples of that outcome
    mute: tuple[int, int] = (0, 0)   # wrong samples on testable questions without a behaviour, of all such
    written: Any = None      # written.WrittenArrays: the model-written tests and every known answer's runs

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
    def fresh(cls, like: ObjectArrays, questions: int, testable: np.ndarray) -> ObjectArrays:
        """Nothing known, on ``questions`` new questions (predictions beyond the search split);
        agreement rates keep the pool's average."""
        G, J, C = like.m.shape[0], like.verdict.shape[0], like.critiqued.shape[0]
        pairs = np.full((2, G, questions), 10.0)   # a pool-strength prior at the pool's rates
        same = np.stack([np.stack([pairs[o] * like.pool_rate(o, mode) for mode in (0, 1)]) for o in (0, 1)])
        none = np.zeros((questions, 1))
        return cls(np.zeros((G, questions), int), np.full((G, questions, 1), UNKNOWN), np.full((3, G, questions, 1), np.nan),
                   none.astype(bool), none, np.zeros((2, questions, 1), int), np.zeros((2, questions, 1), int),
                   np.full((J, questions, 1), UNKNOWN), np.full((3, J, questions, 1), np.nan),
                   np.zeros((C, questions, 1), bool), np.full((3, C, questions, 1), np.nan),
                   np.asarray(testable, bool), same, pairs, like.mute, like.written.fresh(questions))


def key_ids(objects: Objects, q: int, keys: list) -> list[int]:
    """Vote-key ids of a question's objects (``keys``: one per object): the modal right key (counted
    over samples) is CANONICAL, the modal wrong one MODAL_WRONG, so a drawn sample that repeats
    either joins it."""
    ids: dict = {}
    for outcome, reserved in ((True, CANONICAL), (False, MODAL_WRONG)):
        seen = Counter(keys[o] for cell in objects.samples for o, _ in cell[q] if objects.judged[q][o].correct == outcome)
        if seen and seen.most_common(1)[0][0] not in ids:
            ids[seen.most_common(1)[0][0]] = reserved
    return [ids.setdefault(key, len(ids) + 2) for key in keys]


def object_arrays(objects: Objects) -> ObjectArrays:
    G, Q = len(objects.generators), objects.questions
    J, C = len(objects.judges["verify"]), len(objects.judges["critique"])
    M = max([len(cell) for cells in objects.samples for cell in cells] + [1])
    width = max([len(t) for t in objects.texts] + [1])
    m = np.array([[len(cell) for cell in cells] for cells in objects.samples], int).reshape(G, Q)
    sample, gen_cost = np.full((G, Q, M), UNKNOWN), np.full((3, G, Q, M), np.nan)
    correct, rate = np.zeros((Q, width), bool), np.zeros((Q, width))
    cluster, level = np.zeros((2, Q, width), int), np.zeros((2, Q, width), int)
    same, pairs = np.zeros((2, 2, G, Q)), np.zeros((2, G, Q))
    mute = [0, 0]
    for q in range(Q):
        for o, j in enumerate(objects.judged[q]):
            correct[q, o], rate[q, o] = j.correct, j.rate or 0.0
            for mode in (0, 1):
                level[mode, q, o] = j.vote_key(bool(mode))[0]
        for mode in (0, 1):
            ids = key_ids(objects, q, [j.vote_key(bool(mode))[1] for j in objects.judged[q]])
            cluster[mode, q, : len(ids)] = ids
        for g, cells in enumerate(objects.samples):
            cell = cells[q]
            for i, (o, call) in enumerate(cell):
                sample[g, q, i] = o
                gen_cost[:, g, q, i] = call.tokens_in, call.tokens_out, call.latency_s
            _agreement_counts(objects, q, g, cell, cluster, same, pairs, mute)
    verdict, verdict_cost = np.full((J, Q, width), UNKNOWN), np.full((3, J, Q, width), np.nan)
    for (j, q, o), (ok, call) in objects.verdicts.items():
        verdict[j, q, o] = int(ok)
        verdict_cost[:, j, q, o] = call.tokens_in, call.tokens_out, call.latency_s
    critiqued, critique_cost = np.zeros((C, Q, width), bool), np.full((3, C, Q, width), np.nan)
    for (c, q, o), (_, call) in objects.critiques.items():
        critiqued[c, q, o] = True
        critique_cost[:, c, q, o] = call.tokens_in, call.tokens_out, call.latency_s
    return ObjectArrays(m, sample, gen_cost, correct, rate, cluster, level, verdict, verdict_cost, critiqued,
                        critique_cost, np.asarray(objects.testable, bool), same, pairs, tuple(mute))


def _agreement_counts(objects: Objects, q: int, g: int, cell, cluster, same, pairs, mute) -> None:
    """Per (generator, question): pairs of known samples of one outcome, and how many share a vote key."""
    judged = [objects.judged[q][o] for o, _ in cell]
    for mode in (0, 1):
        for k, outcome in enumerate((True, False)):
            counts = Counter(cluster[mode, q, o] for (o, _), j in zip(cell, judged) if j.correct == outcome)
            same[k, mode, g, q] = sum(c * (c - 1) // 2 for c in counts.values())
    right = sum(j.correct for j in judged)
    pairs[0, g, q], pairs[1, g, q] = right * (right - 1) // 2, (len(cell) - right) * (len(cell) - right - 1) // 2
    if objects.testable[q]:
        wrong = [j for j in judged if not j.correct]
        mute[0] += sum(j.behaviour is None for j in wrong)
        mute[1] += len(wrong)
