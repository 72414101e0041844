"""``critique``: a model lists strengths and weaknesses of each candidate (one call each)."""

from __future__ import annotations

import asyncio

from pydantic import Field

from ..validation import Strict
from .base import Candidate, LayerContext, Technique, fill


class CritiqueParams(Strict):
    model: str
    temperature: float = Field(0.0, ge=0, le=2)
    max_tokens: int = Field(160, ge=1, le=100_000)
    template: str = (
        "Question:\n{question}\n\nCandidate answer:\n{candidate}\n\n"
        "Review this answer in at most three sentences: list its strengths and weaknesses and point out "
        "any error. Do not write a new answer."
    )


class Critique(Technique):
    kind = "critique"
    Params = CritiqueParams

    def calls(self, candidates: int) -> tuple[float, int]:
        return float(candidates), candidates

    def messages(self, question_text: str, candidate_text: str) -> list[dict[str, str]]:
        return [{"role": "user", "content": fill(self.params.template, question=question_text, candidate=candidate_text)}]

    async def apply(self, ctx: LayerContext, question, candidates: list[Candidate]) -> list[Candidate]:
        p = self.params

        async def one(c: Candidate) -> Candidate:
            result = await ctx.complete(p.model, self.messages(question.text, c.text),
                                        temperature=p.temperature, max_tokens=p.max_tokens)
            return c.with_(critique=result.text.strip())

        return list(await asyncio.gather(*(one(c) for c in candidates)))
