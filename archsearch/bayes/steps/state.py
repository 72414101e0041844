"""What the steps share: the simulated candidates (``State``), one block of posterior draws with its
common random numbers (``Draws``), the known objects and lookups (``Context``), and the base class.

A state holds, per draw d, pipeline p (of one signature), question q and candidate slot s, what the
runtime's candidate list would hold: which slots are alive and in what order (slot order), which
known answer a slot is (an object of ``objects.py``; UNKNOWN when drawn), whether it is right, its
visible-test pass rate, vote keys, accepted verdicts and critic. Slots are laid out statically per
layer (each generate or fuse layer owns a range), so arrays keep their shapes from step to step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from ..objects import CANONICAL, MODAL_WRONG, UNKNOWN, ObjectArrays, Objects


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


@dataclass
class Context:
    """What every block of draws shares: the known objects and what asks about them."""

    arrays: ObjectArrays
    objects: Objects | None          # the lookups (rankings, fusions); None on new questions
    generators: dict[str, int]       # generator key -> index
    judges: dict[str, dict[str, int]]  # role -> judge key -> index
    visible: int                     # 1 when verifier 0 is the visible tests, else 0
    requests: set | None = None      # discovery: rankings and fusions with known inputs not yet looked up

    def writer_row(self, t: int, alone: bool = False) -> int:
        """Writer t's verifier row: after the visible tests and the LLM judges, every writer's tests
        judging candidates together, then every writer's judging one at a time (``alone``)."""
        writers = len(self.judges.get("test", {}))
        return self.visible + len(self.judges.get("verify", {})) + t + writers * alone

    def ask(self, request: tuple) -> None:
        if self.requests is not None:
            self.requests.add(request)


@dataclass
class Draws:
    """One block of posterior draws, with the uniforms every pipeline shares (common random numbers):
    per generator, question and sample index, whether a drawn sample is right, passes the visible
    tests, repeats the canonical answer, is mute, and each judge's verdict -- so pipelines that share
    samples share their fate, and their differences are not swamped by simulation noise."""

    d: np.ndarray            # [D] rows of the posterior (and of the cost draws)
    theta: np.ndarray        # [D, G]
    b: np.ndarray            # [D, Q]
    p: np.ndarray            # [D, G, Q] the cells' accuracies
    tau: np.ndarray          # [D, V, G]
    gamma: np.ndarray        # [D, V, G]
    lam: np.ndarray          # [D, V]
    rank_beta: np.ndarray    # [D, R]
    rank_alpha: np.ndarray
    fuse: dict[str, np.ndarray]   # a, b, d, e: [D, F]
    correct: np.ndarray      # [D, G, Q, M] uniforms
    passes: np.ndarray
    joins: np.ndarray
    mute: np.ndarray
    verdicts: np.ndarray     # [D, J + T, G, Q, M] per LLM judge, then per test writer
    written_right: np.ndarray  # [D, T, Q] one per writer and question: right programs behave alike on its tests
    agreement: np.ndarray    # [2 right/wrong, 2 by text/behaviour, D, G, Q]
    costs: object            # costs.CostDraw
    rng: np.random.Generator
    tables: dict = field(default_factory=dict)   # (rate, verifier) -> its table (``_table``)

    @classmethod
    def draw(cls, posterior, arrays: ObjectArrays, costs, rng: np.random.Generator, d: np.ndarray, samples: int) -> Draws:
        G, Q = posterior.theta.shape[1], posterior.b.shape[1]
        J, T = arrays.verdict.shape[0], arrays.written.writers
        shape = (len(d), G, Q, samples)
        agreement = np.stack([np.stack([arrays.agreement(len(d), rng, o, mode) for mode in (0, 1)]) for o in (0, 1)])
        return cls(d, posterior.theta[d], posterior.b[d], posterior.cell_p(rng, d), posterior.tau[d], posterior.gamma[d],
                   posterior.lam[d], posterior.rank_beta[d], posterior.rank_alpha[d],
                   {k: v[d] for k, v in posterior.fuse.items()}, rng.random(shape), rng.random(shape), rng.random(shape),
                   rng.random(shape), rng.random((len(d), J + T) + shape[1:]), rng.random((len(d), T, Q)), agreement,
                   costs, rng)

    def verdict_uniforms(self, j: np.ndarray, s: State) -> np.ndarray:
        """[D, P, Q, N] the shared uniform deciding judge j's verdict on each slot (a sample's own;
        a fresh one for an answer that is not a sample)."""
        D, P, Q, N = s.gen.shape
        shared = self.verdicts[np.arange(D)[:, None, None, None], np.asarray(j)[None, :, None, None], s.gen,
                               np.arange(Q)[None, None, :, None], np.clip(s.src, 0, self.verdicts.shape[-1] - 1)]
        return np.where(s.src >= 0, shared, self.rng.random(s.gen.shape))

    def tpr(self, v: int, gen: np.ndarray) -> np.ndarray:
        """[D, P, Q, N] the TPR of verifier v for each slot's generator."""
        return per_generator(self._table("tpr", v), gen)

    def fpr(self, v: int, gen: np.ndarray) -> np.ndarray:
        """[D, P, Q, N] the FPR of verifier v for each slot's generator on each slot's question."""
        return per_generator(self._table("fpr", v), gen)

    def _table(self, rate: str, v: int) -> np.ndarray:
        """Verifier v's TPR [D, G, 1] or FPR [D, G, Q] per generator (and question), computed once per
        block: a slot's rate is looked up, not recomputed for each of the many slots sharing it."""
        key = (rate, v)
        if key not in self.tables:
            if rate == "tpr":
                self.tables[key] = sigmoid(self.tau[:, v, :])[:, :, None]
            else:
                skill = self.theta[:, :, None] - self.b[:, None, :]
                self.tables[key] = sigmoid(self.gamma[:, v, :][:, :, None] - self.lam[:, v][:, None, None] * skill)
        return self.tables[key]


@dataclass
class State:
    """[D, P, Q, N] candidate slots; [D, P, Q] what was spent so far."""

    alive: np.ndarray
    obj: np.ndarray          # known object, or UNKNOWN
    correct: np.ndarray
    gen: np.ndarray          # the generator whose sample it is (a fused answer: its first input's)
    src: np.ndarray          # its sample index (UNKNOWN for a fused answer)
    rate: np.ndarray         # share of visible tests passed
    cl0: np.ndarray          # vote key by answer text
    cl1: np.ndarray          # vote key by behaviour
    lv0: np.ndarray          # vote level by answer text (only the highest level votes)
    lv1: np.ndarray
    weight: np.ndarray       # accepted verdicts so far
    critic: np.ndarray       # the critic whose critique it carries, or UNKNOWN
    tested: np.ndarray       # a test layer ran it (it carries a share of tests passed and its behaviour on them)
    trate: np.ndarray        # ... that share
    ag: np.ndarray           # ... its vote key by agreement (behaviour on those tests, else answer text)
    aglv: np.ndarray         # ... and that key's level (2 behaviour, 1 text, 0 none)
    calls: np.ndarray = field(default=None)
    tokens: np.ndarray = field(default=None)
    usd: np.ndarray = field(default=None)
    bought: np.ndarray = field(default=None)     # calls whose answer the cache did not hold
    exact: np.ndarray = field(default=None)      # every call so far was known: a replay, not a draw

    SLOTS: ClassVar[tuple[str, ...]] = ("alive", "obj", "correct", "gen", "src", "rate", "cl0", "cl1", "lv0", "lv1",
                                        "weight", "critic", "tested", "trate", "ag", "aglv")

    @classmethod
    def empty(cls, D: int, P: int, Q: int, N: int) -> State:
        shape = (D, P, Q, N)
        zeros = {name: np.zeros(shape, dtype) for name, dtype in
                 (("alive", bool), ("correct", bool), ("rate", float), ("cl0", int), ("cl1", int), ("lv0", int),
                  ("lv1", int), ("weight", float), ("gen", int), ("tested", bool), ("trate", float), ("ag", int),
                  ("aglv", int))}
        unknown = {name: np.full(shape, UNKNOWN) for name in ("obj", "src", "critic")}
        spent = {name: np.zeros((D, P, Q)) for name in ("calls", "tokens", "usd", "bought")}
        return cls(**zeros, **unknown, **spent, exact=np.ones((D, P, Q), bool))

    @property
    def known(self) -> np.ndarray:
        return self.obj != UNKNOWN

    def reorder(self, order: np.ndarray) -> None:
        """Put the slots in ``order`` ([D, P, Q, N] slot indices), e.g. as a ranker ordered them."""
        for name in self.SLOTS:
            setattr(self, name, np.take_along_axis(getattr(self, name), order, axis=-1))

    def first(self, mask: np.ndarray) -> np.ndarray:
        """[D, P, Q, N] the first slot of ``mask``, in slot order (argmax: the first True, or 0 when none)."""
        return (np.arange(mask.shape[-1]) == mask.argmax(axis=-1)[..., None]) & mask

    def charge(self, made: np.ndarray, known_cost: np.ndarray, model, role: str, inputs, draws: Draws) -> np.ndarray:
        """Add calls (``made`` [D, P, Q, N]): their recorded tokens and latency where known
        (``known_cost`` [3, D, P, Q, N], nan where not), drawn from the cost model where not. Returns
        each call's latency (0 where no call; everywhere when the cost side prices nothing)."""
        if not draws.costs.priced:   # discovery: only which calls the steps ask for matters
            return np.zeros(made.shape)
        unknown = made & np.isnan(known_cost[0])
        cost = known_cost
        if unknown.any():
            cost = np.where(np.isnan(known_cost), draws.costs.sample(model.id, role, inputs, made.shape, rows=draws.d,
                                                                      rng=draws.rng),
                            known_cost)
        self.calls += made.sum(axis=-1)
        self.bought += unknown.sum(axis=-1)
        self.exact &= ~unknown.any(axis=-1)
        self.tokens += np.where(made, cost[0] + cost[1], 0.0).sum(axis=-1)
        self.usd += np.where(made, usd_of(model, draws.costs, cost[0], cost[1]), 0.0).sum(axis=-1)
        return np.where(made, cost[2], 0.0)


def per_generator(table: np.ndarray, gen: np.ndarray) -> np.ndarray:
    """[D, P, Q, N] a [D, G, Q or 1] table's entry for each slot's generator ``gen`` (and question)."""
    q = np.arange(gen.shape[2])[None, None, :, None] if table.shape[2] > 1 else 0
    return table[np.arange(table.shape[0])[:, None, None, None], gen, q]


def usd_of(model, costs, tokens_in, tokens_out):
    """Dollars of calls to ``model``: its price, else what its recorded calls cost per token."""
    if model.price is not None:
        return (tokens_in * model.price.input_per_mtok + tokens_out * model.price.output_per_mtok) / 1e6
    return (tokens_in + tokens_out) * costs.model.usd_per_token.get(model.id, 0.0)


def known_or_drawn(known: np.ndarray, replayed, drawn):
    """``np.where(known, replayed(), drawn)``; only ``drawn`` where nothing is known (new questions),
    without gathering the replayed side or a pass over the drawn one."""
    return np.where(known, replayed(), drawn) if known.any() else drawn


def joined_or_fresh(joins: np.ndarray, agree: np.ndarray, correct, fresh: np.ndarray) -> np.ndarray:
    """A drawn answer's vote key: with the pool's rate of agreement (its uniform ``joins`` below
    ``agree``) it is its question's modal answer -- the right one, or the most common wrong one --
    else a new one of its own (``fresh``)."""
    return np.where(joins < agree, np.where(correct, CANONICAL, MODAL_WRONG), fresh)


def per_pipeline(values, dtype=None) -> np.ndarray:
    """[1, P, 1, 1] a per-pipeline value, broadcast over draws, questions and slots."""
    return np.asarray(values, dtype=dtype)[None, :, None, None]


class Step:
    """One layer of every pipeline of a signature. The constructor reads the layers' params (one
    per pipeline) into per-pipeline arrays; ``apply`` changes the state in place and returns the
    layer's latency [D, P, Q]: its slowest call (the runtime runs a layer's calls concurrently)."""

    kind: ClassVar[str]
    asks: ClassVar[bool] = False     # looks up calls about several known answers (``Context.ask``): discovery runs it
    adds: int = 0                    # slots this layer fills (its widest pipeline)
    offset: int = 0                  # where its slots start

    @classmethod
    def covers(cls, params) -> bool:
        """Whether the step models these params (a step may cover only some of a technique's options)."""
        return True

    def __init__(self, layers: list, ctx: Context) -> None:
        self.layers, self.ctx = layers, ctx

    def apply(self, s: State, draws: Draws) -> np.ndarray:
        raise NotImplementedError

    def layer_places(self) -> list[list[str]]:
        """Per runtime layer this step stands for, each pipeline's place of it (``Layer.place``): what
        its non-call time is drawn from."""
        return [[layer.place for layer in self.layers]]

    def models(self) -> dict[str, tuple[object, np.ndarray]]:
        """Each distinct model of this layer's pipelines, with which pipelines call it [P]."""
        if "_models" not in self.__dict__:
            keys = [layer.model.model_dump_json() for layer in self.layers]
            self._models = {k: (self.layers[keys.index(k)].model, np.array([x == k for x in keys])) for k in dict.fromkeys(keys)}
        return self._models

    def charge(self, s: State, draws: Draws, made: np.ndarray, cost: np.ndarray, role: str, inputs=1) -> np.ndarray:
        """Charge ``made`` calls [D, P, Q, N] to each pipeline's model; each call's latency."""
        models = self.models()
        if len(models) == 1:
            model, _ = next(iter(models.values()))
            return s.charge(made, cost, model, role, inputs, draws)
        lat = np.zeros(made.shape)
        for model, mine in models.values():
            mine = per_pipeline(mine)
            lat += s.charge(made & mine, np.where(mine, cost, np.nan), model, role, inputs, draws)
        return lat

