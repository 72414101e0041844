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
    max_tokens: int = Field(64, ge=1, le=100_000)
    template: str = (
        "Question:\n{question}\n\nCandidate answers:\n{candidates}\n\n"
        "Rank the candidates from the most to the least likely to be correct. "
        "Reply with the ranking only, in the form [2] > [1] > [3]."
    )


_ITEM = r"\[\s*(\d+)\s*\]"
_CHAIN = re.compile(rf"{_ITEM}(?:\s*>\s*{_ITEM})+|(?<![\w\[])(\d+)(?:\s*>\s*(\d+))+(?![\w\]])")


def parse_ranking(text: str, n: int) -> list[int] | None:
    """0-based order from a ranking such as ``[2] > [1] > [3]`` (or ``2 > 1 > 3``); a reply that is
    only bracketed numbers (``[2]``, or ``[2], [1]``) counts too. Numbers in prose do not: without a
    ranking the answer is None. Unnamed candidates follow in their original order."""
    chain = _CHAIN.search(text)
    if chain:
        named = [int(x) for x in re.findall(r"\d+", chain[0])]
    elif re.fullmatch(rf"\s*(?:{_ITEM}[\s,;>]*)+[.]?\s*", text):
        named = [int(x) for x in re.findall(_ITEM, text)]
    else:
        return None
    order: list[int] = []
    for number in named:
        if 1 <= number <= n and number - 1 not in order:
            order.append(number - 1)
    if not order:
        return None
    return order + [i for i in range(n) if i not in order]


class Rank(Technique):
    kind = "rank"
    Params = RankParams

    def describe(self) -> str:
        return f"rank {self.params.model} keep={self.params.keep}"

    def calls(self, candidates: int) -> tuple[float, int]:
        return 1.0, min(candidates, self.params.keep)

    def messages(self, question_text: str, candidates: list[Candidate]) -> list[dict[str, str]]:
        return [{"role": "user", "content": fill(self.params.template, question=question_text,
                                                 candidates=numbered(candidates))}]

    def order(self, reply: str, candidates: list[Candidate]) -> list[Candidate]:
        """The candidates as the ranker's reply orders them, scored; unranked when it gave no ranking."""
        order = parse_ranking(reply, len(candidates))
        if order is None:
            return list(candidates)
        return [candidates[i].with_(score=float(len(order) - r)) for r, i in enumerate(order)]

    async def apply(self, ctx: LayerContext, question, candidates: list[Candidate]) -> list[Candidate]:
        p = self.params
        if len(candidates) <= 1:
            return candidates
        result = await ctx.complete(p.model, self.messages(question.text, candidates),
                                    temperature=p.temperature, max_tokens=p.max_tokens)
        return self.order(result.text, candidates)[: p.keep]
