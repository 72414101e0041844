"""Score a pipeline on a task split: accuracy with a 95% interval, $/question, latency, calls."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import Unscored
from .pipeline import Pipeline
from .spec import Measured
from .stats import percentile, wilson_interval
from .tasks.task import Record, Task


@dataclass
class QuestionOutcome:
    id: str
    answer: str | None
    correct: bool
    usd: float          # what the answer costs (cache hits at their original price)
    seconds: float
    calls: int
    cache_hits: int
    error: str | None = None
    tokens: int = 0     # in + out, over every call the answer took
    non_call: tuple[tuple[str, float], ...] = ()   # (place, seconds) of each layer that paid no call


@dataclass
class EvalReport:
    split: str
    outcomes: list[QuestionOutcome] = field(default_factory=list)

    @property
    def scored(self) -> list[QuestionOutcome]:
        return [o for o in self.outcomes if o.error is None]

    @property
    def failures(self) -> list[QuestionOutcome]:
        return [o for o in self.outcomes if o.error is not None]

    @property
    def correct(self) -> int:
        return sum(o.correct for o in self.scored)

    @property
    def accuracy(self) -> float:
        return self.correct / len(self.scored) if self.scored else 0.0

    def interval(self) -> tuple[float, float]:
        return wilson_interval(self.correct, len(self.scored))

    def _per_question(self, attr: str) -> float:
        return sum(getattr(o, attr) for o in self.scored) / len(self.scored) if self.scored else 0.0

    def measured(self) -> Measured:
        low, high = self.interval()
        secs = [o.seconds for o in self.scored]
        return Measured(split=self.split, questions=len(self.scored), accuracy=self.accuracy,
                        accuracy_low=low, accuracy_high=high, usd_per_question=self._per_question("usd"),
                        latency_p50_s=percentile(secs, 50), latency_p95_s=percentile(secs, 95),
                        calls_per_question=self._per_question("calls") + self._per_question("cache_hits"))

    def non_call_times(self) -> dict[str, list[float]]:
        """Seconds of the layers that paid no call, by layer place (``spec.layer_places``): the
        surrogate's non-call time."""
        out: dict[str, list[float]] = {}
        for o in self.scored:
            for place, seconds in o.non_call:
                out.setdefault(place, []).append(seconds)
        return out

    def summary(self) -> dict[str, Any]:
        m = self.measured()
        return {**m.model_dump(), "failed_questions": len(self.failures),
                "paid_calls": sum(o.calls for o in self.outcomes),
                "cache_hits": sum(o.cache_hits for o in self.outcomes)}


async def score_record(pipeline: Pipeline, task: Task, record: Record) -> QuestionOutcome:
    try:
        result = await pipeline.acall(task.question(record))
        correct = (await task.scorer.score(result.answer, record, pipeline.client, pipeline.sandbox_memo)
                   if result.answer is not None else 0.0)
    except Unscored as exc:  # a failed call or sandbox is not a wrong answer: report it apart
        return QuestionOutcome(record.id, None, False, 0.0, 0.0, 0, 0, error=str(exc))
    t = result.trace
    tokens = sum(layer.tokens_in + layer.tokens_out for layer in t.layers)
    places = pipeline.layer_places
    return QuestionOutcome(record.id, result.answer, bool(correct), t.cost_usd, t.latency_s, t.calls, t.cache_hits,
                           tokens=tokens, non_call=tuple((places[layer.index], layer.non_call_s) for layer in t.layers
                                                         if layer.non_call_s is not None))


async def trace_record(pipeline: Pipeline, task: Task, record: Record) -> dict[str, Any]:
    """One question answered with each layer's candidates, verdicts and votes kept, and its score:
    what a report shows of a pipeline at work."""
    try:
        result = await pipeline.acall(task.question(record), detail=True)
        correct = (await task.scorer.score(result.answer, record, pipeline.client, pipeline.sandbox_memo)
                   if result.answer is not None else 0.0)
    except Unscored as exc:
        return {"id": record.id, "question": record.text, "reference": str(record.reference), "error": str(exc)}
    return {"id": record.id, "question": record.text, "reference": str(record.reference), "answer": result.answer,
            "correct": bool(correct), "layers": [layer.as_dict() for layer in result.trace.layers]}


async def aevaluate(pipeline: Pipeline, task: Task, records: list[Record], split: str, *,
                    concurrency: int = 32, on_done: Callable[[QuestionOutcome], None] | None = None) -> EvalReport:
    gate = asyncio.Semaphore(concurrency)
    report = EvalReport(split)

    async def one(record: Record) -> None:
        async with gate:
            outcome = await score_record(pipeline, task, record)
        report.outcomes.append(outcome)
        if on_done:
            on_done(outcome)

    await asyncio.gather(*(one(r) for r in records))
    order = {r.id: i for i, r in enumerate(records)}
    report.outcomes.sort(key=lambda o: order[o.id])
    return report
