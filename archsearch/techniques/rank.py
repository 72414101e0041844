"""``rank``: a model orders the candidates; the top ``keep`` survive."""

from __future__ import annotations

import re

from pydantic import Field

from ..validation import Strict
from .base import Candidate, LayerContext, Technique, fill, numbered


class RankParams(Strict):
    model: str
    keep: int = Field(1, ge=1, le=1000)
    temperature: float = Field(0.0, ge=0, le=2)
    max_tokens: int = Field(128, ge=1, le=100_000)
    template: str = (
        "Question:\n{question}\n\nCandidate answers:\n{candidates}\n\n"
        "Rank the candidates from best to worst. Reply with the ranking only, e.g. [2] > [1] > [3]."
    )


def parse_ranking(text: str, n: int) -> list[int]:
    """0-based order from ``[2] > [1]``; unnamed candidates follow in their original order."""
    order: list[int] = []
    for m in re.findall(r"\[?(\d+)\]?", text):
        i = int(m) - 1
        if 0 <= i < n and i not in order:
            order.append(i)
    return order + [i for i in range(n) if i not in order]


class Rank(Technique):
    kind = "rank"
    Params = RankParams

    async def apply(self, ctx: LayerContext, question, candidates: list[Candidate]) -> list[Candidate]:
        p = self.params
        if len(candidates) <= 1:
            return candidates
        prompt = fill(p.template, question=question.text, candidates=numbered(candidates))
        result = await ctx.complete(p.model, [{"role": "user", "content": prompt}],
                                    temperature=p.temperature, max_tokens=p.max_tokens)
        order = parse_ranking(result.text, len(candidates))
        return [candidates[i].with_(score=float(len(order) - r)) for r, i in enumerate(order)][: p.keep]
