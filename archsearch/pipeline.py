"""Run a frozen spec: ``archsearch.load("pipeline.yaml")`` returns a Pipeline.

This module is the deployment path: it imports neither optuna, jax nor numpyro.
"""

from __future__ import annotations

import asyncio
import os
import string
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ArchsearchError
from .llm.cache import CallCache
from .llm.client import LLMClient
from .registry import technique_class
from .sequential import until_accepted, until_settled, until_settled_among_accepted
from .spec import PipelineSpec, early_stop_partners, layer_places, load_spec
from .tasks.task import Question, render
from .techniques.base import Candidate, LayerContext, LayerTrace, Technique


@dataclass
class Trace:
    layers: list[LayerTrace]
    seconds: float = 0.0

    @property
    def calls(self) -> int:
        return sum(t.calls for t in self.layers)

    @property
    def cache_hits(self) -> int:
        return sum(t.cache_hits for t in self.layers)

    @property
    def usd(self) -> float:
        return sum(t.usd for t in self.layers)

    @property
    def cost_usd(self) -> float:
        """What this answer costs to produce, whether or not its calls came from the cache."""
        return sum(t.cost_usd for t in self.layers)

    @property
    def latency_s(self) -> float:
        """Wall time, or for replayed (cached) calls the latency they had when first made: steps run
        one after another; the layers of a step (consecutive generators) and the calls within a
        layer run concurrently -- except in a sequential step, whose calls run one after another."""
        steps: dict[int, float] = {}
        serial: dict[int, float] = {}
        for t in self.layers:
            steps[t.step] = max(steps.get(t.step, 0.0), t.seconds, t.slowest_call_s)
            if t.sequential:
                serial[t.step] = serial.get(t.step, 0.0) + t.calls_s
        return sum(max(steps[s], serial.get(s, 0.0)) for s in steps)

    def as_dict(self) -> dict[str, Any]:
        return {"seconds": self.seconds, "latency_s": self.latency_s, "calls": self.calls, "cache_hits": self.cache_hits,
                "usd": self.usd, "cost_usd": self.cost_usd, "layers": [t.as_dict() for t in self.layers]}


@dataclass
class Result:
    answer: str | None            # the extracted answer of the first surviving candidate; None = abstained
    text: str | None              # that candidate's full text
    candidates: list[Candidate] = field(default_factory=list)
    trace: Trace = field(default_factory=lambda: Trace([]))


def _stops_early(technique: Technique) -> bool:
    return getattr(technique.params, "stop", "never") != "never"


def _describe(c: Candidate) -> dict[str, Any]:
    return {"id": c.cid, "parents": list(c.parents), "model": c.model, "source": c.source,
            "sample_index": c.sample_index, "answer": c.answer, "text": c.text, "critique": c.critique,
            "verdicts": {label: ok for label, ok in c.verdicts}, "tests_passed": c.tests_passed, "score": c.score,
            "tokens_in": c.tokens_in, "tokens_out": c.tokens_out, "cost_usd": c.cost_usd, "latency_s": c.latency_s}


def build_techniques(spec: PipelineSpec) -> list[Technique]:
    out = []
    for layer in spec.layers:
        cls = technique_class(layer.kind)
        if cls is None:
            raise ArchsearchError(f"unknown layer kind {layer.kind!r}")
        out.append(cls(cls.Params.model_validate(layer.params)))
    return out


class Pipeline:
    def __init__(self, spec: PipelineSpec, client: LLMClient | None = None, *, sandbox_slots: int | None = None,
                 sandbox_memo: dict | None = None) -> None:
        self.spec = spec
        self.sandbox_memo = sandbox_memo
        self.client = client if client is not None else LLMClient()
        self.sandbox_slots = sandbox_slots or os.cpu_count() or 2
        self.techniques = build_techniques(spec)
        self.extract = spec.extractor()
        self._fields = [f for _, f, _, _ in string.Formatter().parse(spec.task.template) if f]
        self._slots: tuple[asyncio.AbstractEventLoop, asyncio.Semaphore] | None = None
        self._steps = self.steps()
        self._places: list[str] | None = None

    @property
    def layer_places(self) -> list[str]:
        """Each layer's ``kind:reach@own:prefix`` (``spec.layer_places``), what its non-call time is kept under."""
        if self._places is None:
            self._places = layer_places(self.spec)
        return self._places

    @property
    def fields(self) -> list[str]:
        """The record fields the task template needs."""
        return sorted(set(self._fields))

    def question(self, q: str | dict[str, Any] | Question) -> Question:
        if isinstance(q, Question):
            return q
        if isinstance(q, dict):
            return Question(render(self.spec.task.template, q), dict(q), q.get("visible_tests"), q.get("id"))
        if len(set(self._fields)) == 1:
            fields = {self._fields[0]: q}
            return Question(render(self.spec.task.template, fields), fields)
        raise ArchsearchError(f"this pipeline's template needs fields {sorted(set(self._fields))}: pass a dict")

    def _sandbox_semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if self._slots is None or self._slots[0] is not loop:
            self._slots = (loop, asyncio.Semaphore(self.sandbox_slots))
        return self._slots[1]

    def steps(self) -> list[list[int]]:
        """Layer indices grouped into steps: consecutive generators run as one concurrent step; a
        generator that stops early (``stop: accepted | settled``) and the layers that decide when
        form one sequential step."""
        kinds = [t.kind for t in self.techniques]
        steps: list[list[int]] = []
        i = 0
        while i < len(self.techniques):
            technique = self.techniques[i]
            if _stops_early(technique):
                width = 1 + early_stop_partners(technique.params.stop, kinds[i + 1:])
                steps.append(list(range(i, i + width)))
                i += width
                continue
            prev = self.techniques[steps[-1][-1]] if steps else None
            if prev is not None and technique.appends_only and prev.appends_only \
                    and not _stops_early(self.techniques[steps[-1][0]]):
                steps[-1].append(i)
            else:
                steps.append([i])
            i += 1
        return steps

    async def acall(self, question: str | dict[str, Any] | Question, detail: bool = False) -> Result:
        """Answer one question. ``detail`` keeps each layer's inputs and outputs in the trace (which
        candidates fed each output, verdicts, critiques): why the pipeline answered what it did."""
        q = self.question(question)
        candidates: list[Candidate] = []
        traces: list[LayerTrace] = []
        drawn: dict[str, int] = {}
        start = time.perf_counter()
        for step, indices in enumerate(self._steps):
            if _stops_early(self.techniques[indices[0]]):
                candidates = await self._sequential(indices, step, q, candidates, drawn, traces, detail)
            elif len(indices) == 1:
                candidates = await self._layer(indices[0], step, q, candidates, candidates, drawn, traces, detail)
            else:  # generators of one step add their candidates, in layer order, to what came before
                added = await asyncio.gather(*(self._layer(i, step, q, [], candidates, drawn, traces, detail)
                                               for i in indices))
                candidates = candidates + [c for out in added for c in out]
        traces.sort(key=lambda t: t.index)
        best = candidates[0] if candidates else None
        return Result(best.answer if best else None, best.text if best else None, candidates,
                      Trace(traces, time.perf_counter() - start))

    async def _layer(self, i: int, step: int, q: Question, inputs: list[Candidate], before: list[Candidate],
                     drawn: dict[str, int], traces: list[LayerTrace], detail: bool) -> list[Candidate]:
        """Run layer ``i`` on ``inputs`` (a generator of a concurrent step gets none; ``before`` is
        what the step started from), giving its new candidates their ids."""
        technique = self.techniques[i]
        trace = LayerTrace(index=i, kind=technique.kind, step=step, candidates_in=len(inputs))
        ctx = LayerContext(self.client, self.spec.models, self.extract, trace, self._sandbox_semaphore(),
                           label=f"{i}:{technique.kind}", sandbox_memo=self.sandbox_memo, drawn=drawn)
        start = time.perf_counter()
        out = await technique.apply(ctx, q, inputs)
        trace.seconds = time.perf_counter() - start
        out = [c if c.cid else c.with_(cid=f"{i}.{k}") for k, c in enumerate(out)]
        trace.candidates_out = len(out)
        if detail:
            trace.inputs = [c.cid for c in inputs] if inputs is before else []
            trace.outputs = [_describe(c) for c in out]
        traces.append(trace)
        return out

    async def _sequential(self, indices: list[int], step: int, q: Question, before: list[Candidate],
                          drawn: dict[str, int], traces: list[LayerTrace], detail: bool) -> list[Candidate]:
        """A generator that stops early with the layers that decide when (a filter, a vote, or a
        filter then a vote), drawing one sample at a time."""
        techniques = [self.techniques[i] for i in indices]
        layer_traces = [LayerTrace(index=i, kind=t.kind, step=step, sequential=True) for i, t in zip(indices, techniques)]
        contexts = [LayerContext(self.client, self.spec.models, self.extract, t, self._sandbox_semaphore(),
                                 label=f"{t.index}:{t.kind}", sandbox_memo=self.sandbox_memo, drawn=drawn)
                    for t in layer_traces]
        start = time.perf_counter()
        gen = techniques[0]
        if gen.params.stop == "accepted":
            out = await until_accepted(gen, techniques[1], *contexts, q, before)
        elif len(techniques) == 2:
            out = await until_settled(gen, techniques[1], *contexts, q, before)
        else:
            out = await until_settled_among_accepted(gen, *techniques[1:], *contexts, q, before)
        out = [c if c.cid else c.with_(cid=f"{indices[-1]}.{k}") for k, c in enumerate(out)]
        gtrace = layer_traces[0]
        gtrace.candidates_in, gtrace.candidates_out = len(before), gtrace.cache_hits + gtrace.calls + len(before)
        for prev, t in zip(layer_traces, layer_traces[1:]):
            t.candidates_in = prev.candidates_out
            t.candidates_out = t.candidates_out or t.candidates_in
        layer_traces[-1].candidates_out = len(out)
        for t in layer_traces:
            t.seconds = time.perf_counter() - start
            if detail:
                t.inputs, t.outputs = [], []
        if detail:
            gtrace.inputs, layer_traces[-1].outputs = [c.cid for c in before], [_describe(c) for c in out]
        traces.extend(layer_traces)
        return out

    def __call__(self, question: str | dict[str, Any] | Question, detail: bool = False) -> Result:
        return _run(self._then_release(self.acall(question, detail)))

    async def _then_release(self, coro):
        try:
            return await coro
        finally:
            await self.client.release_loop()

    async def abatch(self, questions: Iterable[str | dict[str, Any] | Question], concurrency: int = 64,
                     detail: bool = False) -> list[Result]:
        gate = asyncio.Semaphore(concurrency)

        async def one(q):
            async with gate:
                return await self.acall(q, detail)

        return list(await asyncio.gather(*(one(q) for q in questions)))

    def batch(self, questions: Iterable[str | dict[str, Any] | Question], concurrency: int = 64,
              detail: bool = False) -> list[Result]:
        return _run(self._then_release(self.abatch(questions, concurrency, detail)))


def _run(coro):
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    coro.close()
    raise ArchsearchError("an event loop is already running here: use `await pipe.acall(...)` / `await pipe.abatch(...)`")


def load(path: str | Path, *, client: LLMClient | None = None, cache: str | CallCache | None = None) -> Pipeline:
    """Load a frozen pipeline spec. ``cache`` (a SQLAlchemy URL or CallCache) makes repeated
    questions free; pass a ready ``client`` to share caps, cache and budget across pipelines."""
    spec = load_spec(path)
    if client is None:
        if isinstance(cache, str):
            cache = CallCache(cache)
        client = LLMClient(cache=cache)
    return Pipeline(spec, client)
