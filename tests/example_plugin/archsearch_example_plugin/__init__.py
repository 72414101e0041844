"""An example technique from outside archsearch: ``dedupe`` keeps the first candidate of each
distinct answer (at most ``keep`` of them), so later layers (rank, fuse) read fewer copies."""

from __future__ import annotations

from pydantic import Field

from archsearch.techniques import Candidate, LayerContext, Technique
from archsearch.validation import Strict


class DedupeParams(Strict):
    keep: int = Field(100, ge=1)


class Dedupe(Technique):
    kind = "dedupe"
    Params = DedupeParams

    def describe(self) -> str:          # how the front table names the layer
        return f"dedupe to {self.params.keep} distinct answers"

    def calls(self, candidates: int) -> tuple[float, int]:   # no model call; fewer candidates after it
        return 0.0, min(candidates, self.params.keep)

    async def apply(self, ctx: LayerContext, question, candidates: list[Candidate]) -> list[Candidate]:
        seen, out = set(), []
        for c in candidates:
            key = " ".join((c.answer or c.text).split())
            if key not in seen:
                seen.add(key)
                out.append(c)
        return out[: self.params.keep]
