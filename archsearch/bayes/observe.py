"""What the call cache already knows, read without making a call.

The observer runs the techniques' own code (Generate.sample, Verify.judge, Rank.apply,
Critique.apply, Fuse.apply) against the cache through a client whose backend refuses every call,
so a lookup is exactly the request the real layer would make: a cached answer is known, anything
else is not. Samples are scored by the task's hidden tests and run through its visible tests by
the same recipe the test and vote layers use (programs.py).
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field

import numpy as np

from ..errors import LLMCallError, Unscored
from ..llm.cache import CallCache
from ..llm.client import LLMClient
from ..programs import check_visible
from ..sandbox import SandboxLimits
from ..tasks.scorers import PythonTests
from ..tasks.task import Question, Record, Task
from ..techniques.base import Candidate, LayerContext, LayerTrace
from ..techniques.critique import Critique
from ..techniques.fuse import Fuse
from ..techniques.generate import Generate
from ..techniques.rank import Rank
from ..techniques.verify import Verify
from ..techniques.vote import normalise
from .known import Judged
from .plan import Generator, Judge, Plan


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


@dataclass(frozen=True)
class Sample:
    text: str
    judged: Judged
    call: CallObs


@dataclass
class Known:
    """Everything the cache holds about a space's pipelines on the search questions."""

    generators: list[Generator]
    judges: dict[str, list[Judge]]                     # role -> configured judges (verify, rank, critique, fuse)
    samples: list[list[list[Sample]]]                  # [g][q] the known prefix of samples
    testable: np.ndarray                               # [Q] the question has visible tests
    verdicts: dict[tuple, tuple[bool, CallObs]] = field(default_factory=dict)   # (j, g, q, i)
    ranks: dict[tuple, tuple[tuple[int, ...], CallObs]] = field(default_factory=dict)  # (r, g, n, q) -> order
    critiques: dict[tuple, CallObs] = field(default_factory=dict)               # (c, g, q, i)
    fused: dict[tuple, tuple[bool, int, CallObs]] = field(default_factory=dict)  # (f, inputs key, q) -> correct, m

    def index(self, role: str, judge: Judge) -> int:
        return [j.key for j in self.judges[role]].index(judge.key)

    def gen_index(self, generator: Generator) -> int:
        return [g.key for g in self.generators].index(generator.key)

    def calls(self) -> list[CallObs]:
        out = [s.call for cells in self.samples for cell in cells for s in cell]
        out += [c for _, c in self.verdicts.values()] + [c for _, c in self.ranks.values()]
        out += list(self.critiques.values()) + [c for *_, c in self.fused.values()]
        return out


def fusion_inputs_key(plan: Plan) -> tuple:
    """Which fuse call a fusion plan makes on a question, given its samples: what feeds it."""
    g, n = plan.sources[0]
    return (g.key, n, plan.rank.key if plan.rank else None, plan.keep, plan.critique.key if plan.critique else None)


class _Refuse:
    async def complete(self, model_id, messages, params, sample_index=0):
        raise LLMCallError(model_id, "not recorded")


class _Remembered:
    """The cache, remembering what it answered: a cached call never changes, so a refit re-reads
    only what was missing last time (the search may have bought it since)."""

    claims = False

    def __init__(self, cache) -> None:
        self.cache, self.rows = cache, {}

    def get(self, key: str):
        if key not in self.rows:
            row = self.cache.get(key)
            if row is None:
                return None
            self.rows[key] = row
        return self.rows[key]


class Observer:
    def __init__(self, task: Task, records: list[Record], cache: CallCache, memo: dict, max_samples: int = 64) -> None:
        self.task, self.records, self.cache, self.memo, self.max_samples = task, records, cache, memo, max_samples
        self.verifiable = isinstance(task.scorer, PythonTests) and any(r.visible_tests for r in records)
        self.limits = SandboxLimits()  # the test layer's defaults
        self._scored: dict[tuple, Judged] = {}
        self._client = LLMClient(_Refuse(), _Remembered(cache), max_retries=0)
        self._slots: asyncio.Semaphore | None = None
        self._sandboxes: asyncio.Semaphore | None = None

    def testable(self) -> np.ndarray:
        """[Q] which search questions a test layer can verify (it keeps every candidate elsewhere)."""
        return np.array([self.verifiable and bool(r.visible_tests) for r in self.records], bool)

    # -- the cache through the techniques' own code ----------------------------------------
    def _ctx(self, role: str, model, name: str) -> LayerContext:
        return LayerContext(self._client, {name: model}, self.task.extractor, LayerTrace(0, role), self._slots,
                            label=role, sandbox_memo=self.memo)

    @staticmethod
    def _call(ctx: LayerContext, role: str, inputs: int) -> CallObs:
        t = ctx.trace
        return CallObs(next(iter(ctx.models.values())).id, role, inputs, t.tokens_in, t.tokens_out, t.calls_s, t.cost_usd)

    async def judged(self, record: Record, text: str) -> Judged:
        key = (record.id, text)
        if key not in self._scored:
            async with self._sandboxes:
                return await self._judge(record, text, key)
        return self._scored[key]

    async def _judge(self, record: Record, text: str, key: tuple) -> Judged:
        if key not in self._scored:
            answer = self.task.extractor(text)
            hidden = bool(answer) and await self.task.scorer.score(answer, record, None, self.memo) == 1.0
            rate, behaviour = None, None
            if self.verifiable and record.visible_tests:  # exactly what the test and vote layers run
                check = await check_visible(self.task.scorer.program, record.fields, answer, record.visible_tests,
                                            self.limits, self.memo) if answer else None
                rate, behaviour = (check.rate, check.behaviour) if check else (0.0, None)
            self._scored[key] = Judged(hidden, rate, normalise(answer), behaviour)
        return self._scored[key]

    async def _samples(self, gen: Generator, record: Record, question: Question) -> list[Sample]:
        technique, out = Generate(gen.params), []
        for i in range(self.max_samples):
            ctx = self._ctx("generate", gen.model, gen.params.model)
            try:
                c = await technique.sample(ctx, question, i)
                judged = await self.judged(record, c.text)
            except Unscored:   # a call or the sandbox failed: what was seen up to here stands
                break
            out.append(Sample(c.text, judged, self._call(ctx, "generate", 1)))
        return out

    async def _verdict(self, judge: Judge, question: Question, text: str):
        ctx = self._ctx("verify", judge.model, judge.params.model)
        try:
            [c] = await Verify(judge.params).judge(ctx, question, [_cand(text)])
        except Unscored:
            return None
        return bool(c.passed("verify")), self._call(ctx, "verify", 1)

    async def _fusion(self, plan: Plan, record: Record, question: Question, samples: list[Sample], known: Known):
        g, n = plan.sources[0]
        gi, q = known.gen_index(g), self.records.index(record)
        if len(samples) < n:
            return
        candidates = [_cand(s.text, i) for i, s in enumerate(samples[:n])]
        if plan.rank is not None:
            r = known.index("rank", plan.rank)
            if (r, gi, n, q) not in known.ranks:
                ctx = self._ctx("rank", plan.rank.model, plan.rank.params.model)
                try:
                    ranked = await Rank(plan.rank.params.model_copy(update={"keep": n})).apply(ctx, question, candidates)
                except Unscored:
                    return
                known.ranks[(r, gi, n, q)] = (tuple(c.sample_index for c in ranked), self._call(ctx, "rank", n))
            order = known.ranks[(r, gi, n, q)][0]
            candidates = [candidates[i] for i in order][: plan.keep]
        if plan.critique is not None:
            c_index = known.index("critique", plan.critique)
            critiqued = []
            for cand in candidates:
                ctx = self._ctx("critique", plan.critique.model, plan.critique.params.model)
                try:
                    [done] = await Critique(plan.critique.params).apply(ctx, question, [cand])
                except Unscored:
                    return
                known.critiques[(c_index, gi, q, cand.sample_index)] = self._call(ctx, "critique", 1)
                critiqued.append(done)
            candidates = critiqued
        if plan.fuse is None:
            return
        f, key = known.index("fuse", plan.fuse), fusion_inputs_key(plan)
        if (f, key, q) in known.fused:
            return
        ctx = self._ctx("fuse", plan.fuse.model, plan.fuse.params.model)
        try:
            [out] = await Fuse(plan.fuse.params).apply(ctx, question, candidates)
            correct = (await self.judged(record, out.text)).correct
        except Unscored:
            return
        m = sum(samples[c.sample_index].judged.correct for c in candidates)
        known.fused[(f, key, q)] = (correct, m, self._call(ctx, "fuse", len(candidates)))

    # -- everything at once ------------------------------------------------------------------
    def observe(self, plans: list[Plan]) -> Known:
        generators = list({g.key: g for p in plans for g in p.generators()}.values())
        judges: dict[str, list[Judge]] = {role: [] for role in ("verify", "rank", "critique", "fuse")}
        for p in plans:
            for j in p.judges():
                if j.key not in {x.key for x in judges[j.role]}:
                    judges[j.role].append(j)
        pairs = sorted({(c.judge.key, g.key) for p in plans for c in p.checks if c.judge for g in p.generators()})
        fusions = list({fusion_inputs_key(p) + (p.fuse.key if p.fuse else None,): p
                        for p in plans if p.family == "fusion"}.values())
        known = Known(generators, judges, [[[] for _ in self.records] for _ in generators], self.testable())
        verify_index = {j.key: i for i, j in enumerate(judges["verify"])}
        gen_index = {g.key: i for i, g in enumerate(generators)}

        async def question(q: int, record: Record) -> None:
            asked = self.task.question(record)
            for gi, g in enumerate(generators):
                known.samples[gi][q] = await self._samples(g, record, asked)
            lookups = [(jk, gk, i) for jk, gk in pairs for i in range(len(known.samples[gen_index[gk]][q]))]
            found = await asyncio.gather(*(self._verdict(judges["verify"][verify_index[jk]], asked,
                                                         known.samples[gen_index[gk]][q][i].text)
                                           for jk, gk, i in lookups))
            for (jk, gk, i), verdict in zip(lookups, found):
                if verdict is not None:
                    known.verdicts[(verify_index[jk], gen_index[gk], q, i)] = verdict
            for plan in fusions:
                await self._fusion(plan, record, asked, known.samples[gen_index[plan.sources[0][0].key]][q], known)

        async def everything() -> None:
            self._slots = asyncio.Semaphore(8)
            self._sandboxes = asyncio.Semaphore(2 * (os.cpu_count() or 2))  # scoring runs sandboxed processes
            try:
                await asyncio.gather(*(question(q, r) for q, r in enumerate(self.records)))
            finally:
                await self._client.release_loop()

        asyncio.run(everything())
        return known


def _cand(text: str, index: int = 0) -> Candidate:
    return Candidate(text=text, answer=None, model="", source="generate", sample_index=index)
