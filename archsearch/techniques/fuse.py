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

    async def apply(self, ctx: LayerContext, question, candidates: list[Candidate]) -> list[Candidate]:
        p = self.params
        if not candidates:
            return candidates
        prompt = fill(p.template, question=question.text, candidates=numbered(candidates))
        messages = [{"role": "user", "content": prompt}]

        async def one(i: int) -> Candidate:
            result = await ctx.complete(p.model, messages, temperature=p.temperature,
                                        max_tokens=p.max_tokens, sample_index=i)
            return ctx.candidate(result, p.model, self.kind, i).with_(parents=tuple(c.cid for c in candidates))

        outputs = p.n_out if p.temperature > 0 else 1  # greedy decoding gives n_out identical answers: pay once
        return list(await asyncio.gather(*(one(i) for i in range(outputs))))
