"""``vote``: plurality over the candidates' answers, optionally weighted by earlier verdicts.

``by: answer`` compares the extracted answers as text (numbers, short strings). ``by: behaviour``
is for code: each program runs on the inputs of the question's visible tests and programs that
return the same values are one answer (AlphaCode / CodeT clustering), so two loops written
differently agree; where a question has no visible tests it falls back to the text. ``by:
agreement`` is CodeT's dual agreement (Chen et al. 2022): after a ``test`` layer (e.g. model-written
tests, ``keep: all``), programs with the same behaviour on the tests' inputs form a group, and a
group scores (programs in it) x (tests its members pass): the best group wins.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from math import comb
from typing import Literal

from pydantic import Field

from ..programs import check_visible
from ..sandbox import SandboxLimits
from ..validation import Strict
from .base import Candidate, LayerContext, Technique


class VoteParams(Strict):
    weight_by: Literal["none", "verdicts"] = "none"
    verdict_weight: float = Field(1.0, ge=0, le=1000)
    by: Literal["answer", "behaviour", "agreement"] = "answer"
    program: str = "{answer}"
    timeout_s: float = Field(10.0, gt=0, le=600)
    memory_mb: int = Field(1024, ge=64)


def normalise(answer: str | None) -> str | None:
    return None if answer is None else " ".join(answer.split())


def beta_lead(v1: int, v2: int) -> float:
    """P(p1 > p2) when the leader has v1 votes and the runner-up v2, under a uniform prior on their
    split: 1 - I_{1/2}(v1 + 1, v2 + 1) = P(Binomial(v1 + v2 + 1, 1/2) <= v1), exact for integers."""
    n = v1 + v2 + 1
    return sum(comb(n, k) for k in range(v1 + 1)) / 2 ** n


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
    needs_program = True

    def describe(self) -> str:
        by = {"answer": "", "behaviour": " by behaviour", "agreement": " by agreement"}[self.params.by]
        return "vote" + by + (" (weighted)" if self.params.weight_by != "none" and self.params.by != "agreement" else "")

    def calls(self, candidates: int) -> tuple[float, int]:
        return 0.0, min(candidates, 1)

    def weight(self, c: Candidate) -> float:
        if self.params.by == "agreement":   # a group's score: its size times the share of tests it passes
            return c.tests_passed or 0.0
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

    async def keys(self, ctx: LayerContext, question, candidates: list[Candidate]) -> list:
        """What the vote compares, per candidate (None: no vote while others have one)."""
        keys = [normalise(c.answer) for c in candidates]
        if self.params.by == "agreement":   # behaviour on the tests the test layer ran (it set it)
            return [("behaviour", c.behaviour) if c.behaviour is not None else k for c, k in zip(candidates, keys)]
        if self.params.by == "behaviour":
            keys = await self.behaviours(ctx, question, candidates) or keys
        return keys

    async def settled(self, ctx: LayerContext, question, candidates: list[Candidate], remaining: int,
                      confidence: float) -> bool:
        """Stop drawing: the runner-up cannot catch up with the samples left, or the leader's lead is
        sure at ``confidence`` (P(p1 > p2) under Beta(v1 + 1, v2 + 1), Adaptive-Consistency's rule)."""
        keys = await self.keys(ctx, question, candidates)
        counted = [k for k in keys if k is not None] or keys
        tally = sorted(Counter(counted).values(), reverse=True) + [0, 0]
        v1, v2 = tally[0], tally[1]
        if v1 > v2 + remaining:
            return True
        return beta_lead(v1, v2) >= confidence

    async def apply(self, ctx: LayerContext, question, candidates: list[Candidate]) -> list[Candidate]:
        keys = await self.keys(ctx, question, candidates)
        winner = plurality(keys, [self.weight(c) for c in candidates])
        if winner is None:
            return []
        cluster = [c for c, k in zip(candidates, keys) if k == keys[winner]]
        return [candidates[winner].with_(score=sum(self.weight(c) for c in cluster),
                                         parents=tuple(c.cid for c in cluster))]
