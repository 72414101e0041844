"""``fuse``: a model reads all candidates (and critiques) and writes ``n_out`` new answers (one at
temperature 0, where more would be copies)."""

from __future__ import annotations

import asyncio

from pydantic import Field

from ..validation import Strict
from .base import Candidate, LayerContext, Technique, fill, numbered


class FuseParams(Strict):
    model: str
    n_out: int = Field(1, ge=1, le=100)
    temperature: float = Field(0.0, ge=0, le=2)
    max_tokens: int = Field(512, ge=1, le=100_000)
    template: str = (
        "Question:\n{question}\n\nCandidate answers from other assistants (some may be wrong):\n"
        "{candidates}\n\nWrite one best answer to the question, fixing any errors above. "
        "Answer in the same format the question asks for."
    )


class Fuse(Technique):
    kind = "fuse"
    Params = FuseParams

    def describe(self) -> str:
        return f"fuse {self.params.model} n_out={self.params.n_out}"

    def calls(self, candidates: int) -> tuple[float, int]:
        return float(self.outputs()), self.outputs()

    def messages(self, question_text: str, candidates: list[Candidate]) -> list[dict[str, str]]:
        return [{"role": "user", "content": fill(self.params.template, question=question_text,
                                                 candidates=numbered(candidates))}]

    def outputs(self) -> int:
        """Calls per question: n_out, or one at temperature 0 (more would be copies)."""
        return self.params.n_out if self.params.temperature > 0 else 1

    async def apply(self, ctx: LayerContext, question, candidates: list[Candidate]) -> list[Candidate]:
        p = self.params
        if not candidates:
            return candidates
        messages = self.messages(question.text, candidates)

        async def one(i: int) -> Candidate:
            result = await ctx.complete(p.model, messages, temperature=p.temperature,
                                        max_tokens=p.max_tokens, sample_index=i)
            return ctx.candidate(result, p.model, self.kind, i).with_(parents=tuple(c.cid for c in candidates))

        return list(await asyncio.gather(*(one(i) for i in range(self.outputs()))))
