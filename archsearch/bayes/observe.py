"""What the call cache already knows, read without making a call.

The observer runs the techniques' own code (Generate.sample, Verify.judge, Critique.apply,
Rank.apply, Fuse.apply) against the cache through a client whose backend refuses every call, so a
lookup is exactly the request the real layer would make: a cached answer is known, anything else
is not. Answer texts are scored by the task's hidden tests and run through its visible tests by the
same recipe the test and vote layers use (programs.py).

Samples and the LLM verdicts on every known answer are read up front (``observe``). Rankings and
fusions depend on which candidates reach them, so the steps ask for them (``resolve``) with the
exact inputs their simulation arrives at, whenever every input is a known answer.
"""

from __future__ import annotations

import asyncio
import os

import numpy as np

from ..errors import Unscored
from ..llm.cache import CallCache, request_key
from ..llm.types import CallResult
from ..programs import check_visible, split_tests
from ..sandbox import SandboxLimits
from ..tasks.scorers import PythonTests
from ..tasks.task import Record, Task
from ..techniques.base import Candidate, LayerContext, LayerTrace
from ..techniques.critique import Critique
from ..techniques.fuse import Fuse
from ..techniques.generate import Generate
from ..techniques.rank import Rank
from ..techniques.unit_test import UnitTest
from ..techniques.verify import Verify
from ..techniques.vote import normalise
from .objects import CallObs, Inputs, Judged, Objects
from .plan import Layer, Plan, written_tests
from .written import Run, Written

ROLES = ("verify", "rank", "critique", "fuse", "test")   # "test": the layers whose tests a model writes


class _NotRecorded(Unscored):
    """The call (cache ``key``) is not in the cache. Not an LLMCallError: the observer asks for tens of
    thousands of calls never made, and that error scans the environment for secrets to redact on every one."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


class _Remembered:
    """The cache as the techniques' client (``complete``, keyed by ``request_key`` as the real client
    is): an answer it holds is returned, any other call refused -- never made, never waited for.
    It remembers what it answered: a cached call never changes, so a refit re-reads only what was
    missing last time (the search may have bought it since)."""

    claims = False

    def __init__(self, cache) -> None:
        self.cache, self.rows, self.times = cache, {}, {}
        self.present: set[str] | None = None   # every key the cache held when last read, if it can list them

    def reread(self) -> None:
        """Before a round of lookups: note every key the cache holds (one query instead of one per miss)."""
        keys = getattr(self.cache, "keys", None)
        self.present = keys() if keys is not None else None

    def get(self, key: str):
        if key not in self.rows:
            if self.present is not None and key not in self.present:
                return None
            row = self.cache.get(key)
            if row is None:
                return None
            self.rows[key] = row
        return self.rows[key]

    async def complete(self, model, messages, *, temperature: float = 0.0, max_tokens: int = 512,
                       sample_index: int = 0) -> CallResult:
        key = request_key(model, messages, temperature, max_tokens, sample_index)
        row = self.get(key)
        if row is None:
            raise _NotRecorded(key)
        return CallResult.from_row(row, key)

    def created(self, key: str) -> float:
        if key not in self.times:
            when = getattr(self.cache, "created", lambda k: None)(key)
            self.times[key] = when or 0.0
        return self.times[key]


class Observer:
    def __init__(self, task: Task, records: list[Record], cache: CallCache, memo: dict, max_samples: int = 64) -> None:
        self.task, self.records, self.cache, self.memo, self.max_samples = task, records, cache, memo, max_samples
        self.verifiable = isinstance(task.scorer, PythonTests) and any(r.visible_tests for r in records)
        self.limits = SandboxLimits()  # the test layer's defaults
        self._scored: dict[tuple, Judged] = {}
        self._remembered = _Remembered(cache)
        self._loop = asyncio.new_event_loop()
        self._sandboxes: asyncio.Semaphore | None = None
        self.layers: dict[str, Layer] = {}
        self.objects: Objects | None = None
        # lookups that failed: the key of the call the cache did not hold (None: the sandbox failed)
        self._missed: dict[tuple, str | None] = {}
        self._tests: dict[tuple[int, int], str] = {}   # (writer, question): the test code the layer runs

    def close(self) -> None:
        self._loop.close()

    def testable(self) -> np.ndarray:
        """[Q] which search questions a test layer can verify (it keeps every candidate elsewhere)."""
        return np.array([self.verifiable and bool(r.visible_tests) for r in self.records], bool)

    def _run(self, coro):
        async def with_slots():
            if self._sandboxes is None:
                self._sandboxes = asyncio.Semaphore(2 * (os.cpu_count() or 2))  # scoring runs sandboxed processes
            return await coro
        return self._loop.run_until_complete(with_slots())

    # -- the cache through the techniques' own code ----------------------------------------
    def _ctx(self, layer: Layer) -> LayerContext:
        return LayerContext(self._remembered, {layer.params.model: layer.model}, self.task.extractor,
                            LayerTrace(0, layer.kind), asyncio.Semaphore(1), label=layer.kind, sandbox_memo=self.memo,
                            keys=[])

    def _call(self, ctx: LayerContext, layer: Layer, inputs: int) -> CallObs:
        t = ctx.trace
        created = max((self._remembered.created(k) for k in ctx.keys), default=0.0)
        return CallObs(layer.model.id, layer.kind, inputs, t.tokens_in, t.tokens_out, t.calls_s, t.cost_usd, created)

    async def judged(self, q: int, text: str) -> Judged:
        record = self.records[q]
        key = (record.id, text)
        if key not in self._scored:
            async with self._sandboxes:
                if key not in self._scored:
                    self._scored[key] = await self._judge(record, text)
        return self._scored[key]

    async def _judge(self, record: Record, text: str) -> Judged:
        answer = self.task.extractor(text)
        hidden = bool(answer) and await self.task.scorer.score(answer, record, None, self.memo) == 1.0
        rate, behaviour = None, None
        if self.verifiable and record.visible_tests:  # exactly what the test and vote layers run
            check = await check_visible(self.task.scorer.program, record.fields, answer, record.visible_tests,
                                        self.limits, self.memo) if answer else None
            rate, behaviour = (check.rate, check.behaviour) if check else (0.0, None)
        return Judged(hidden, rate, normalise(answer), behaviour)

    async def _register(self, q: int, text: str) -> int:
        judged = await self.judged(q, text)
        return self.objects.add(q, text, judged)

    async def _samples(self, g: int, layer: Layer, q: int) -> None:
        technique, cell = Generate(layer.params), self.objects.samples[g][q]
        question = self.task.question(self.records[q])
        for i in range(len(cell), self.max_samples):
            if ("sample", g, q, i) in self._missed:
                return
            ctx = self._ctx(layer)
            try:
                c = await technique.sample(ctx, question, i)
                o = await self._register(q, c.text)
            except Unscored as exc:   # a call or the sandbox failed: what was seen up to here stands
                self._miss(("sample", g, q, i), exc)
                return
            cell.append((o, self._call(ctx, layer, 1)))

    def _miss(self, lookup: tuple, exc: Unscored) -> None:
        """``lookup`` failed: not asked again in this read, nor in later ones while its call is
        still missing from the cache (a technique asks for the same calls given the same inputs)."""
        self._missed[lookup] = exc.key if isinstance(exc, _NotRecorded) else None

    def _candidate(self, q: int, o: int, critic: int = -1) -> Candidate:
        critique = self.objects.critiques[(critic, q, o)][0] if critic >= 0 else None
        return Candidate(text=self.objects.texts[q][o], answer=None, model="", source="generate", critique=critique)

    async def _verdict(self, j: int, q: int, o: int) -> None:
        layer = self.layers[self.objects.judges["verify"][j]]
        if (j, q, o) in self.objects.verdicts or ("verify", j, q, o) in self._missed:
            return
        ctx = self._ctx(layer)
        try:
            [c] = await Verify(layer.params).judge(ctx, self.task.question(self.records[q]), [self._candidate(q, o)])
        except Unscored as exc:
            self._miss(("verify", j, q, o), exc)
            return
        self.objects.verdicts[(j, q, o)] = (bool(c.passed("verify")), self._call(ctx, layer, 1))

    async def _critique(self, c: int, q: int, o: int) -> None:
        layer = self.layers[self.objects.judges["critique"][c]]
        if (c, q, o) in self.objects.critiques or ("critique", c, q, o) in self._missed:
            return
        ctx = self._ctx(layer)
        try:
            [done] = await Critique(layer.params).apply(ctx, self.task.question(self.records[q]), [self._candidate(q, o)])
        except Unscored as exc:
            self._miss(("critique", c, q, o), exc)
            return
        self.objects.critiques[(c, q, o)] = (done.critique, self._call(ctx, layer, 1))

    # -- everything at once ------------------------------------------------------------------
    def observe(self, plans: list[Plan]) -> Objects:
        """Samples of every generator, and every LLM verdict and critique of every known answer."""
        for plan in plans:
            for layer in plan.layers:
                self.layers.setdefault(layer.key, layer)
        generators = sorted({layer.key for p in plans for layer in p.generators()}, key=list(self.layers).index)
        judges = {role: sorted({layer.key for p in plans for layer in p.layers
                                if layer.kind == role and (role != "test" or written_tests(layer))},
                               key=list(self.layers).index) for role in ROLES}
        if self.objects is None:
            self.objects = Objects([], {role: [] for role in ROLES}, self.testable())
        self.objects.extend(generators, judges)
        self._remembered.reread()
        present = self._remembered.present   # the cache may have grown: ask again, unless a call is still missing
        self._missed = {k: key for k, key in self._missed.items() if present is not None and key is not None
                        and key not in present}
        self._run(self._observe_all())
        return self.objects

    async def _observe_all(self) -> None:
        objects = self.objects

        async def question(q: int) -> None:
            for g, key in enumerate(objects.generators):
                await self._samples(g, self.layers[key], q)
            await self._about_objects(q)

        await asyncio.gather(*(question(q) for q in range(objects.questions)))

    async def _about_objects(self, q: int) -> None:
        objects = self.objects
        lookups = [self._verdict(j, q, o) for j in range(len(objects.judges["verify"])) for o in range(len(objects.texts[q]))]
        lookups += [self._critique(c, q, o) for c in range(len(objects.judges["critique"]))
                    for o in range(len(objects.texts[q]))]
        lookups += [self._written(t, q) for t in range(len(objects.judges["test"]))]
        await asyncio.gather(*lookups)

    async def _written(self, t: int, q: int) -> None:
        """The tests writer t wrote for question q, if the cache holds every call, and how each known
        answer fares against them (run once per answer, in the test layer's own sandbox recipe)."""
        layer = self.layers[self.objects.judges["test"][t]]
        technique, question = UnitTest(layer.params), self.task.question(self.records[q])
        if (t, q) not in self.objects.written:
            if ("test", t, q) in self._missed:
                return
            messages, replies, calls = technique.writer_messages(question), [], []
            for i in range(layer.params.n_calls):
                ctx = self._ctx(layer)
                try:
                    replies.append((await technique.write(ctx, messages, i)).text)
                except Unscored as exc:
                    self._miss(("test", t, q), exc)
                    return
                calls.append(self._call(ctx, layer, 1))
            tests, _ = technique.parse_written(replies, question)
            code = technique.test_code(question, tests)
            self.objects.written[(t, q)] = Written(len(split_tests(code)[1]), len(tests), tuple(calls))
            self._tests[(t, q)] = code
        code, n = self._tests[(t, q)], self.objects.written[(t, q)].n
        todo = [o for o in range(len(self.objects.texts[q])) if (t, q, o) not in self.objects.runs]
        for o, run in zip(todo, await asyncio.gather(*(self._against(layer, q, o, code, n) for o in todo))):
            self.objects.runs[(t, q, o)] = run

    async def _against(self, layer: Layer, q: int, o: int, code: str, n: int) -> Run:
        """What the test layer sees of answer o: the same check, the same reading of it."""
        record, p = self.records[q], layer.params
        answer = self.task.extractor(self.objects.texts[q][o])
        check = None
        if answer and n:
            async with self._sandboxes:
                check = await check_visible(p.program, record.fields, answer, code,
                                            SandboxLimits(timeout_s=p.timeout_s, memory_mb=p.memory_mb), self.memo)
        passed = tuple(check.run.passed) if check and len(check.run.passed) == n else (False,) * n
        return Run(passed, check is not None, check.behaviour if check else None, normalise(answer))

    # -- rankings and fusions, for the inputs the steps arrive at ------------------------------
    def resolve(self, requests: set[tuple]) -> int:
        """Look up ``("rank", r, q, inputs)`` / ``("fuse", f, q, inputs, i)`` requests; new answers
        become objects (scored, judged by every verifier). Returns how many were found."""
        # in sorted order: a set of tuples with strings in them iterates in an order that changes with
        # the process's hash seed, and answers found become objects (and observations) in this order
        todo = sorted(r for r in requests if r not in self._missed)
        found = self._run(self._resolve_all(todo))
        return sum(found)

    async def _resolve_all(self, todo: list[tuple]) -> list[bool]:
        found = await asyncio.gather(*(self._rank(*r[1:]) if r[0] == "rank" else self._fuse(*r[1:]) for r in todo))
        new = {r[2] for r, ok in zip(todo, found) if ok and r[0] == "fuse"}
        await asyncio.gather(*(self._about_objects(q) for q in new))
        return list(found)

    async def _rank(self, r: int, q: int, inputs: Inputs) -> bool:
        if (r, q, inputs) in self.objects.ranks:
            return True
        layer = self.layers[self.objects.judges["rank"][r]]
        ctx = self._ctx(layer)
        candidates = [self._candidate(q, o, c).with_(sample_index=k) for k, (o, c) in enumerate(inputs)]
        try:
            ranked = await Rank(layer.params.model_copy(update={"keep": len(inputs)})).apply(
                ctx, self.task.question(self.records[q]), candidates)
        except Unscored as exc:
            self._miss(("rank", r, q, inputs), exc)
            return False
        self.objects.ranks[(r, q, inputs)] = (tuple(c.sample_index for c in ranked), self._call(ctx, layer, len(inputs)))
        return True

    async def _fuse(self, f: int, q: int, inputs: Inputs, i: int) -> bool:
        if (f, q, inputs, i) in self.objects.fused:
            return True
        layer = self.layers[self.objects.judges["fuse"][f]]
        ctx = self._ctx(layer)
        fuse = Fuse(layer.params)
        candidates = [self._candidate(q, o, c) for o, c in inputs]
        try:
            result = await ctx.complete(layer.params.model, fuse.messages(self.task.question(self.records[q]).text, candidates),
                                        temperature=layer.params.temperature, max_tokens=layer.params.max_tokens,
                                        sample_index=i)
            o = await self._register(q, result.text)
        except Unscored as exc:
            self._miss(("fuse", f, q, inputs, i), exc)
            return False
        self.objects.fused[(f, q, inputs, i)] = (o, self._call(ctx, layer, len(inputs)))
        return True
