"""``vote``: majority over extracted answers, optionally weighted by earlier verdicts."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ..validation import Strict
from .base import Candidate, LayerContext, Technique


class VoteParams(Strict):
    weight_by: Literal["none", "verdicts"] = "none"
    verdict_weight: float = Field(1.0, ge=0, le=1000)


def normalise(answer: str | None) -> str | None:
    return None if answer is None else " ".join(answer.split())


class Vote(Technique):
    kind = "vote"
    Params = VoteParams

    def weight(self, c: Candidate) -> float:
        if self.params.weight_by == "none":
            return 1.0
        return 1.0 + self.params.verdict_weight * sum(ok for _, ok in c.verdicts)

    async def apply(self, ctx: LayerContext, question, candidates: list[Candidate]) -> list[Candidate]:
        votes: dict[str | None, float] = {}
        first: dict[str | None, Candidate] = {}
        for c in candidates:
            key = normalise(c.answer)
            if key is None and any(x.answer is not None for x in candidates):
                continue  # an unparseable answer is no vote while parseable ones exist
            votes[key] = votes.get(key, 0.0) + self.weight(c)
            first.setdefault(key, c)
        if not votes:
            return []
        winner = max(votes, key=votes.__getitem__)  # ties: the earliest answer wins (dict order)
        return [first[winner].with_(score=votes[winner])]
