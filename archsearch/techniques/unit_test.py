"""``test``: run unit tests against each candidate program in the sandbox and keep those that pass.

Tests come from the task (e.g. HumanEval's docstring examples, the "visible" tests) or are written
by a model. Unlike Archon, whose unit tests are judged by an LLM, these are executed.
"""

from __future__ import annotations

import ast
import asyncio
import json
import re
from typing import Literal

from pydantic import Field, model_validator

from ..sandbox import SandboxLimits, run_python_memo
from ..validation import Strict
from .base import Candidate, LayerContext, NonePassedPolicy, Technique, apply_none_passed, fill

_MARK = "ARCHSEARCH_TESTS"


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


def split_tests(code: str) -> tuple[str, list[str]]:
    """(setup, tests): top-level asserts are tests, everything else is setup they may need."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return "", []
    setup = [ast.unparse(n) for n in tree.body if not isinstance(n, ast.Assert)]
    tests = [ast.unparse(n) for n in tree.body if isinstance(n, ast.Assert)]
    return "\n".join(setup), tests


def harness(program: str, setup: str, tests: list[str]) -> str:
    return (f"{program}\n\n{setup}\n\n__p = 0\nfor __t in {json.dumps(tests)}:\n    try:\n"
            f"        exec(__t, globals())\n        __p += 1\n    except BaseException:\n        pass\n"
            f"print({_MARK!r}, __p, {len(tests)})\n")


def parse_harness(stdout: str) -> float | None:
    found = re.findall(rf"{_MARK} (\d+) (\d+)", stdout)
    if not found:
        return None
    passed, total = map(int, found[-1])
    return passed / total if total else None


class UnitTest(Technique):
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

    async def run(self, ctx: LayerContext, question, c: Candidate, setup: str, tests: list[str]) -> Candidate:
        p = self.params
        if not c.answer:
            return c.with_(tests_passed=0.0)
        fields = {k: str(v) for k, v in question.fields.items()}
        program = fill(p.program, **fields, answer=c.answer)
        async with ctx.sandbox_slots:
            result = await run_python_memo(harness(program, setup, tests),
                                           SandboxLimits(timeout_s=p.timeout_s, memory_mb=p.memory_mb), ctx.sandbox_memo)
        rate = parse_harness(result.stdout) if result.passed else 0.0
        return c.with_(tests_passed=rate or 0.0)

    async def apply(self, ctx: LayerContext, question, candidates: list[Candidate]) -> list[Candidate]:
        p = self.params
        setup, tests = split_tests(await self.tests_for(ctx, question))
        if not tests or not candidates:
            return candidates  # nothing to test against: the layer is a no-op, visibly (tests_passed None)
        tested = list(await asyncio.gather(*(self.run(ctx, question, c, setup, tests) for c in candidates)))
        tested = [c.with_(verdicts=c.verdicts + ((ctx.label, c.tests_passed == 1.0),)) for c in tested]
        if p.keep == "best":
            top = max(c.tests_passed or 0.0 for c in tested)
            return [c for c in tested if (c.tests_passed or 0.0) == top]
        return apply_none_passed(p.on_none_passed, [c for c in tested if c.tests_passed == 1.0], tested)
