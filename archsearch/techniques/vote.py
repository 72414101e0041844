"""``vote``: plurality over the candidates' answers, optionally weighted by earlier verdicts.

``by: answer`` compares the extracted answers as text (numbers, short strings). ``by: behaviour``
is for code: each program runs on the inputs of the question's visible tests and programs that
return the same values are one answer (AlphaCode / CodeT clustering), so two loops written
differently agree; where a question has no visible tests it falls back to the text.
"""

from __future__ import annotations

import asyncio
from typing import Literal

from pydantic import Field

from ..programs import check_visible
from ..sandbox import SandboxLimits
from ..validation import Strict
from .base import Candidate, LayerContext, Technique


class VoteParams(Strict):
    weight_by: Literal["none", "verdicts"] = "none"
    verdict_weight: float = Field(1.0, ge=0, le=1000)
    by: Literal["answer", "behaviour"] = "answer"
    program: str = "{answer}"
    timeout_s: float = Field(10.0, gt=0, le=600)
    memory_mb: int = Field(1024, ge=64)


def normalise(answer: str | None) -> str | None:
    return None if answer is None else " ".join(answer.split())


def plurality(keys: list, weights: list[float]) -> int | None:
    """Index of the first candidate of the heaviest key (ties: the earliest); None keys do not vote
    while any key is not None."""
    votes: dict = {}
    first: dict = {}
    counted = [k is not None for k in keys]
    for i, (key, w) in enumerate(zip(keys, weights)):
        if key is None and any(counted):
            continue
        votes[key] = votes.get(key, 0.0) + w
        first.setdefault(key, i)
    if not votes:
        return None
    return first[max(votes, key=votes.__getitem__)]


class Vote(Technique):
    kind = "vote"
    Params = VoteParams

    def weight(self, c: Candidate) -> float:
        if self.params.weight_by == "none":
            return 1.0
        return 1.0 + self.params.verdict_weight * sum(ok for _, ok in c.verdicts)

    async def behaviours(self, ctx: LayerContext, question, candidates: list[Candidate]) -> list | None:
        p = self.params
        if not question.visible_tests:
            return None
        limits = SandboxLimits(timeout_s=p.timeout_s, memory_mb=p.memory_mb)

        async def one(c: Candidate):
            if c.behaviour is not None or not c.answer:
                return c.behaviour
            async with ctx.sandbox_slots:
                check = await check_visible(p.program, question.fields, c.answer, question.visible_tests, limits,
                                            ctx.sandbox_memo)
            return check.behaviour if check else None

        found = list(await asyncio.gather(*(one(c) for c in candidates)))
        return found if any(b is not None for b in found) else None

    async def apply(self, ctx: LayerContext, question, candidates: list[Candidate]) -> list[Candidate]:
        keys = [normalise(c.answer) for c in candidates]
        if self.params.by == "behaviour":
            keys = await self.behaviours(ctx, question, candidates) or keys
        winner = plurality(keys, [self.weight(c) for c in candidates])
        if winner is None:
            return []
        cluster = [c for c, k in zip(candidates, keys) if k == keys[winner]]
        return [candidates[winner].with_(score=sum(self.weight(c) for c in cluster),
                                         parents=tuple(c.cid for c in cluster))]
