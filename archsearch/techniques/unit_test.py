"""``test``: run unit tests against each candidate program in the sandbox and keep those that pass.

Tests come from the task (``source: task``, e.g. HumanEval's docstring examples, the "visible"
tests), are written by a model (``source: model``: ``n_calls`` cached calls per question, each
asking for ``n_tests`` asserts, parsed strictly so only calls of the function under test on plain
values survive), or both (``task+model``). Unlike Archon, whose unit tests are judged by an LLM,
these are executed. A model-written test that every candidate fails is more likely wrong than the
candidates (its expected value is off): it is set aside as a suspected wrong test, not counted.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from pydantic import Field, model_validator

from ..programs import check_visible, parse_model_tests, split_tests
from ..sandbox import SandboxLimits
from ..validation import Strict
from .base import Candidate, Filter, LayerContext, NonePassedPolicy, apply_none_passed, fill

WRITE_TESTS = (
    "Write {n_tests} test cases for the function `{entry_point}` described below, as Python assert "
    "statements of the form `assert {entry_point}(...) == expected`. Work out each expected value "
    "from the description. Reply with the asserts only, one per line, in one ```python code block."
    "\n\n{question}"
)


class UnitTestParams(Strict):
    source: Literal["task", "model", "task+model"] = "task"
    model: str | None = None
    n_calls: int = Field(1, ge=1, le=64, description="calls to the test writer per question (samples 0, 1, ...)")
    n_tests: int = Field(5, ge=1, le=100, description="test cases asked for per call")
    temperature: float = Field(0.8, ge=0, le=2)
    max_tokens: int = Field(512, ge=1, le=100_000)
    keep: Literal["passing", "best", "all"] = "passing"
    on_none_passed: NonePassedPolicy = "keep_all"
    program: str = "{answer}"
    entry_point: str = Field("{entry_point}", description="the function the tests call (a template over the fields)")
    timeout_s: float = Field(10.0, gt=0, le=600)
    memory_mb: int = Field(1024, ge=64)
    template: str = WRITE_TESTS

    @model_validator(mode="before")
    @classmethod
    def _old_name(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("source") == "generate":  # its name before model tests were sampled
            data = {**data, "source": "model"}
        return data

    @model_validator(mode="after")
    def _model_for_written(self):
        if self.source != "task" and not self.model:
            raise ValueError(f"source {self.source!r} needs a model (the test writer)")
        return self


class UnitTest(Filter):
    kind = "test"
    Params = UnitTestParams
    needs_program = True

    def describe(self) -> str:
        p = self.params
        tests = {"task": "task tests", "model": f"{p.n_calls}x{p.n_tests} tests by {p.model}",
                 "task+model": f"task tests + {p.n_calls}x{p.n_tests} by {p.model}"}[p.source]
        policy = "" if p.keep in ("best", "all") else f", none passed: {p.on_none_passed}"
        return f"test ({tests}, keep {p.keep}{policy})"

    def calls(self, candidates: int) -> tuple[float, int]:
        return (0.0 if self.params.source == "task" else float(self.params.n_calls)), candidates

    def writer_messages(self, question) -> list[dict[str, str]]:
        p = self.params
        fields = {**question.fields, "question": question.text, "n_tests": str(p.n_tests),
                  "entry_point": fill(p.entry_point, **question.fields)}
        return [{"role": "user", "content": fill(p.template, **fields)}]

    async def written_tests(self, ctx: LayerContext, question) -> tuple[list[str], int]:
        """The model-written tests of a question (every call's, in order, duplicates once) and how
        many lines were dropped by the strict parser."""
        p = self.params
        messages = self.writer_messages(question)
        results = await asyncio.gather(*(self.write(ctx, messages, i) for i in range(p.n_calls)))
        return self.parse_written([r.text for r in results], question)

    async def write(self, ctx: LayerContext, messages, i: int):
        """The test writer's call ``i`` (a sample index, cached like a generator's)."""
        p = self.params
        return await ctx.complete(p.model, messages, temperature=p.temperature, max_tokens=p.max_tokens, sample_index=i)

    def parse_written(self, replies: list[str], question) -> tuple[list[str], int]:
        """The tests in the writer's replies, in order, duplicates once; and how many lines were dropped."""
        entry = fill(self.params.entry_point, **question.fields)
        tests, dropped = [], 0
        for reply in replies:
            kept, lost = parse_model_tests(reply, entry, limit=self.params.n_tests)
            tests += [t for t in kept if t not in tests]
            dropped += lost
        return tests, dropped

    def test_code(self, question, written: list[str]) -> str:
        """What the sandbox runs: the task's visible tests (unless ``source: model``), then the written ones."""
        task = "" if self.params.source == "model" else question.visible_tests or ""
        return "\n".join([task] + written if task else written)

    async def tests_for(self, ctx: LayerContext, question) -> tuple[str, int]:
        """(test code, how many of its tests were written by the model: the last ones)."""
        if self.params.source == "task":
            return question.visible_tests or "", 0
        if "tests" not in ctx.scratch:   # written once per question, however often the layer judges
            written, dropped = await self.written_tests(ctx, question)
            ctx.trace.count("tests_dropped", dropped)
            ctx.scratch["tests"] = self.test_code(question, written), len(written)
        return ctx.scratch["tests"]

    async def run(self, ctx: LayerContext, question, c: Candidate, tests: str):
        p = self.params
        if not c.answer:
            return None
        async with ctx.sandbox_slots:
            return await check_visible(p.program, question.fields, c.answer, tests,
                                       SandboxLimits(timeout_s=p.timeout_s, memory_mb=p.memory_mb), ctx.sandbox_memo)

    async def judge(self, ctx: LayerContext, question, candidates: list[Candidate]) -> list[Candidate]:
        tests, written = await self.tests_for(ctx, question)
        n = len(split_tests(tests)[1])
        if not n or not candidates:
            return candidates  # nothing to test against: the layer is a no-op, visibly (tests_passed None)
        checks = list(await asyncio.gather(*(self.run(ctx, question, c, tests) for c in candidates)))
        passed = [check.run.passed if check and len(check.run.passed) == n else (False,) * n for check in checks]
        counted = [True] * n
        if written and len(candidates) > 1:  # a written test no candidate passes: suspect the test
            for t in range(n - written, n):
                if not any(row[t] for row in passed):
                    counted[t] = False
                    ctx.trace.count("suspected_wrong_tests")
        total = sum(counted) or 1
        out = []
        for c, check, row in zip(candidates, checks, passed):
            rate = sum(ok for ok, use in zip(row, counted) if use) / total if check else 0.0
            out.append(c.with_(tests_passed=rate, behaviour=check.behaviour if check else None,
                               verdicts=c.verdicts + ((ctx.label, rate == 1.0),)))
        return out

    def keep(self, ctx: LayerContext, judged: list[Candidate]) -> list[Candidate]:
        if not judged or judged[0].passed(ctx.label) is None or self.params.keep == "all":
            return judged  # not tested, or only annotated (a vote by agreement reads the results)
        if self.params.keep == "best":
            top = max(c.tests_passed or 0.0 for c in judged)
            return [c for c in judged if (c.tests_passed or 0.0) == top]
        return apply_none_passed(self.params.on_none_passed, [c for c in judged if c.tests_passed == 1.0], judged)
