"""What every technique shares: the candidate record, the per-layer context and the base class."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from ..llm.client import LLMClient
from ..llm.models import ModelSpec
from ..llm.types import CallResult, Messages
from ..programs import fill  # noqa: F401  (re-exported: techniques fill their prompts with it)
from ..tasks.record import Question
from ..validation import Strict

NonePassedPolicy = Literal["keep_all", "abstain", "fallback"]


def model_identity(model: ModelSpec) -> dict[str, Any]:
    """What of a model keys its calls (``llm.cache.request_key``): its id and public params -- not its
    price, timeout, transport or credentials."""
    return {"id": model.id, "params": model.public_params()}


@dataclass(frozen=True)
class Candidate:
    """One answer and everything layers learned about it."""

    text: str
    answer: str | None
    model: str
    source: str
    sample_index: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    latency_s: float = 0.0
    critique: str | None = None
    verdicts: tuple[tuple[str, bool], ...] = ()
    tests_passed: float | None = None
    behaviour: tuple[str, ...] | None = None  # values on the visible tests' inputs (a code vote's key)
    score: float | None = None
    cid: str = ""                    # "layer.k", set by the pipeline when the candidate first appears
    parents: tuple[str, ...] = ()    # the candidates it was made from (fuse: its inputs; vote: its cluster)

    def with_(self, **changes: Any) -> Candidate:
        return dataclasses.replace(self, **changes)

    def passed(self, label: str) -> bool | None:
        return dict(self.verdicts).get(label)


@dataclass
class LayerTrace:
    index: int
    kind: str
    step: int = 0            # layers with the same step ran concurrently
    calls: int = 0
    cache_hits: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    usd: float = 0.0        # new spend: paid calls only
    cost_usd: float = 0.0   # what the layer's calls cost, cache hits at their original price
    seconds: float = 0.0
    candidates_in: int = 0
    candidates_out: int = 0
    inputs: list[str] | None = None          # with detail: the input candidates' ids
    outputs: list[dict] | None = None        # with detail: each output candidate, what fed it and what was learnt
    slowest_call_s: float = 0.0  # recorded latency, also for cache hits: the replay-time latency estimate
    calls_s: float = 0.0         # summed recorded latency of the layer's calls
    sequential: bool = False     # its calls ran one after another (a generator that stops early)
    notes: dict[str, int] = field(default_factory=dict)  # what a technique counts of its own (e.g. tests dropped)

    def count(self, name: str, k: int = 1) -> None:
        self.notes[name] = self.notes.get(name, 0) + k

    @property
    def non_call_s(self) -> float | None:
        """The layer's wall time when it paid no call: then all of it went on things other than calls
        (cache reads, votes, the sandbox), which replay measures. None when a call was paid."""
        return self.seconds if self.calls == 0 else None

    def as_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        if not out["notes"]:
            del out["notes"]
        return out


@dataclass
class LayerContext:
    """What a technique may use while running one layer on one question."""

    client: LLMClient
    models: dict[str, ModelSpec]
    extract: Callable[[str], str | None]
    trace: LayerTrace
    sandbox_slots: asyncio.Semaphore
    label: str = field(default="")
    sandbox_memo: dict | None = None
    drawn: dict[str, int] = field(default_factory=dict)  # per question: samples already drawn, by generator
    keys: list[str] | None = None    # when a list, the cache key of every call made is added to it
    scratch: dict = field(default_factory=dict)  # what the layer keeps about this question between calls

    def next_samples(self, generator: str, n: int) -> range:
        """Sample indices for ``n`` more samples of one generator on this question: a second layer
        with the same generator continues where the first stopped instead of repeating it."""
        start = self.drawn.get(generator, 0)
        self.drawn[generator] = start + n
        return range(start, start + n)

    async def complete(self, model: str, messages: Messages, *, temperature: float = 0.0,
                       max_tokens: int = 512, sample_index: int = 0) -> CallResult:
        result = await self.client.complete(self.models[model], messages, temperature=temperature,
                                            max_tokens=max_tokens, sample_index=sample_index)
        t = self.trace
        if result.cached:
            t.cache_hits += 1
        else:
            t.calls += 1
            t.usd += result.cost_usd
        t.cost_usd += result.cost_usd
        t.tokens_in += result.tokens_in
        t.tokens_out += result.tokens_out
        t.slowest_call_s = max(t.slowest_call_s, result.latency_s)
        t.calls_s += result.latency_s
        if self.keys is not None:
            self.keys.append(result.key)
        for name, k in (("timeouts", result.timeouts), ("hedges", result.hedged), ("hedge_wins", result.hedge_won)):
            if k:
                t.count(name, int(k))
        return result

    def candidate(self, result: CallResult, model: str, source: str, sample_index: int) -> Candidate:
        return Candidate(text=result.text, answer=self.extract(result.text), model=model, source=source,
                         sample_index=sample_index, tokens_in=result.tokens_in, tokens_out=result.tokens_out,
                         cost_usd=result.cost_usd, latency_s=result.latency_s)


class Technique(ABC):
    """A layer: maps a question's candidate list to a new list. Constructors only store params."""

    kind: ClassVar[str]
    Params: ClassVar[type[Strict]]
    appends_only: ClassVar[bool] = False  # never reads the candidates, only adds to them: consecutive
                                          # such layers run concurrently, as one step
    needs_program: ClassVar[bool] = False  # runs candidates as programs: the search gives it the task's
                                           # program template (``program``) when the space sets none
    surrogate_step: ClassVar[str | None] = None  # "module:Class" of its surrogate step (plugins)

    def __init__(self, params: Strict) -> None:
        self.params = params

    def describe(self) -> str:
        """One line for the front table: the kind and what was chosen for it."""
        model = getattr(self.params, "model", None)
        return self.kind + (f" {model}" if model else "")

    def calls(self, candidates: int) -> tuple[float, int]:
        """(calls per question, candidates after it) given ``candidates`` before it: how the space
        orders its pipelines by cost (its cheapest is the baseline)."""
        return 0.0, candidates

    @abstractmethod
    async def apply(self, ctx: LayerContext, question: Question, candidates: list[Candidate]) -> list[Candidate]:
        """Return the new candidate list."""


class Filter(Technique):
    """A layer that judges each candidate (a verdict under its label) and keeps the accepted ones,
    with an explicit policy for "nothing passed". Judging and keeping are separate so a sequential
    generator can judge one sample at a time and stop at the first accepted one."""

    @abstractmethod
    async def judge(self, ctx: LayerContext, question: Question, candidates: list[Candidate]) -> list[Candidate]:
        """The candidates with this layer's verdict attached."""

    @abstractmethod
    def keep(self, ctx: LayerContext, judged: list[Candidate]) -> list[Candidate]:
        """What survives, given every candidate judged."""

    def accepted(self, ctx: LayerContext, c: Candidate) -> bool:
        """A candidate this layer would keep on its own; without a verdict (nothing to check), yes."""
        verdict = c.passed(ctx.label)
        return verdict is None or verdict

    async def apply(self, ctx: LayerContext, question: Question, candidates: list[Candidate]) -> list[Candidate]:
        return self.keep(ctx, await self.judge(ctx, question, candidates))


def numbered(candidates: list[Candidate], with_critique: bool = True) -> str:
    """Candidates as ``[1] ...`` blocks for prompts that compare them."""
    parts = []
    for i, c in enumerate(candidates, 1):
        block = f"[{i}]\n{c.text.strip()}"
        if with_critique and c.critique:
            block += f"\nCritique of [{i}]: {c.critique.strip()}"
        parts.append(block)
    return "\n\n".join(parts)


def apply_none_passed(policy: NonePassedPolicy, passing: list[Candidate], all_: list[Candidate]) -> list[Candidate]:
    """The explicit answer to "nothing passed": keep everything, abstain, or keep the first."""
    if passing or not all_:
        return passing
    if policy == "keep_all":
        return all_
    if policy == "fallback":
        return all_[:1]
    return []


def timed() -> Callable[[], float]:
    start = time.perf_counter()
    return lambda: time.perf_counter() - start
