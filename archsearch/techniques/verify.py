"""``verify``: an LLM judge accepts or rejects each candidate; the policy for "nothing passed" is
explicit (Archon silently passes everything; here the spec says which)."""

from __future__ import annotations

import asyncio
import re

from pydantic import Field

from ..validation import Strict
from .base import Candidate, Filter, LayerContext, NonePassedPolicy, apply_none_passed, fill

_VERDICT = re.compile(r"verdict\s*[:\-]?\s*\**\s*(correct|incorrect)", re.IGNORECASE)


class VerifyParams(Strict):
    model: str
    temperature: float = Field(0.0, ge=0, le=2)
    max_tokens: int = Field(192, ge=1, le=100_000)
    on_none_passed: NonePassedPolicy = "keep_all"
    template: str = (
        "Question:\n{question}\n\nProposed answer:\n{candidate}\n\n"
        "Is the proposed answer correct? Reason in at most three sentences, then end with exactly "
        "'Verdict: correct' or 'Verdict: incorrect'."
    )


def parse_verdict(text: str) -> bool:
    found = _VERDICT.findall(text)
    return bool(found) and found[-1].lower() == "correct"


class Verify(Filter):
    kind = "verify"
    Params = VerifyParams

    def describe(self) -> str:
        return f"verify {self.params.model} (none passed: {self.params.on_none_passed})"

    def calls(self, candidates: int) -> tuple[float, int]:
        return float(candidates), candidates

    def messages(self, question_text: str, candidate_text: str) -> list[dict[str, str]]:
        return [{"role": "user", "content": fill(self.params.template, question=question_text, candidate=candidate_text)}]

    async def judge(self, ctx: LayerContext, question, candidates: list[Candidate]) -> list[Candidate]:
        p = self.params

        async def one(c: Candidate) -> Candidate:
            result = await ctx.complete(p.model, self.messages(question.text, c.text), temperature=p.temperature,
                                        max_tokens=p.max_tokens)
            return c.with_(verdicts=c.verdicts + ((ctx.label, parse_verdict(result.text)),))

        return list(await asyncio.gather(*(one(c) for c in candidates)))

    def keep(self, ctx: LayerContext, judged: list[Candidate]) -> list[Candidate]:
        return apply_none_passed(self.params.on_none_passed, [c for c in judged if c.passed(ctx.label)], judged)
