"""``test``: run unit tests against each candidate program in the sandbox and keep those that pass.

Tests come from the task (e.g. HumanEval's docstring examples, the "visible" tests) or are written
by a model. Unlike Archon, whose unit tests are judged by an LLM, these are executed.
"""

from __future__ import annotations

import asyncio
import re
from typing import Literal

from pydantic import Field, model_validator

from ..programs import check_visible, split_tests
from ..sandbox import SandboxLimits
from ..validation import Strict
from .base import Candidate, Filter, LayerContext, NonePassedPolicy, apply_none_passed, fill


class UnitTestParams(Strict):
    source: Literal["task", "generate"] = "task"
    model: str | None = None
    n_tests: int = Field(5, ge=1, le=100)
    max_tokens: int = Field(512, ge=1, le=100_000)
    keep: Literal["passing", "best"] = "passing"
    on_none_passed: NonePassedPolicy = "keep_all"
    program: str = "{answer}"
    timeout_s: float = Field(10.0, gt=0, le=600)
    memory_mb: int = Field(1024, ge=64)
    template: str = (
        "Question:\n{question}\n\nWrite {n_tests} short Python assert statements that a correct solution "
        "must pass. Reply with the asserts only, one per line, in a ```python block."
    )

    @model_validator(mode="after")
    def _model_for_generated(self):
        if self.source == "generate" and not self.model:
            raise ValueError("source 'generate' needs a model")
        return self


class UnitTest(Filter):
    kind = "test"
    Params = UnitTestParams

    async def tests_for(self, ctx: LayerContext, question) -> str:
        p = self.params
        if p.source == "task":
            return question.visible_tests or ""
        prompt = fill(p.template, question=question.text, n_tests=str(p.n_tests))
        result = await ctx.complete(p.model, [{"role": "user", "content": prompt}], max_tokens=p.max_tokens)
        body = re.findall(r"```(?:python)?\n(.*?)```", result.text, re.DOTALL)
        lines = (body[0] if body else result.text).splitlines()
        return "\n".join(ln.strip() for ln in lines if ln.strip().startswith("assert"))[:20_000]

    async def run(self, ctx: LayerContext, question, c: Candidate, tests: str) -> Candidate:
        p = self.params
        if not c.answer:
            return c.with_(tests_passed=0.0)
        async with ctx.sandbox_slots:
            check = await check_visible(p.program, question.fields, c.answer, tests,
                                        SandboxLimits(timeout_s=p.timeout_s, memory_mb=p.memory_mb), ctx.sandbox_memo)
        return c.with_(tests_passed=check.rate if check else 0.0, behaviour=check.behaviour if check else None)

    async def judge(self, ctx: LayerContext, question, candidates: list[Candidate]) -> list[Candidate]:
        tests = await self.tests_for(ctx, question)
        if not split_tests(tests)[1] or not candidates:
            return candidates  # nothing to test against: the layer is a no-op, visibly (tests_passed None)
        tested = list(await asyncio.gather(*(self.run(ctx, question, c, tests) for c in candidates)))
        return [c.with_(verdicts=c.verdicts + ((ctx.label, c.tests_passed == 1.0),)) for c in tested]

    def keep(self, ctx: LayerContext, judged: list[Candidate]) -> list[Candidate]:
        if not judged or judged[0].passed(ctx.label) is None:
            return judged  # not tested
        if self.params.keep == "best":
            top = max(c.tests_passed or 0.0 for c in judged)
            return [c for c in judged if (c.tests_passed or 0.0) == top]
        return apply_none_passed(self.params.on_none_passed, [c for c in judged if c.tests_passed == 1.0], judged)
