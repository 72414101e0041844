"""Score every pipeline of a space on the search split from the recorded pool, without new calls.

Shared by the sampler benchmark and the surrogate calibration: the table maps each pipeline's
fingerprint to its measured accuracy and to the pool samples (call keys) it consumes.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path

from archsearch.bayes.observe import pipeline_shape
from archsearch.errors import LLMCallError
from archsearch.evaluate import aevaluate
from archsearch.llm import CallCache, LLMClient
from archsearch.pipeline import Pipeline
from archsearch.space import SearchSpace, enumerate_space, spec_fingerprint
from archsearch.tasks import Task
from archsearch.techniques.generate import Generate


class NoCalls:
    """A backend that refuses: the benchmark must only replay the pool."""

    async def complete(self, model_id, messages, params, sample_index=0):
        raise LLMCallError(model_id, "not in the recorded pool")


class FilteredCache:
    """The cache as a search that has bought only ``allowed`` samples would see it."""

    def __init__(self, cache: CallCache, allowed: set[str]) -> None:
        self.cache, self.allowed, self.claims = cache, allowed, False

    def get(self, key: str):
        return self.cache.get(key) if key in self.allowed else None


@dataclass
class Row:
    params: dict
    fingerprint: str
    accuracy: float
    calls_per_question: float
    keys: frozenset[str]
    complete: bool


def sample_keys(spec, task: Task, records) -> frozenset[str]:
    shape = pipeline_shape(spec)
    gen = shape.generator
    technique = Generate(gen.params)
    return frozenset(technique.sample_key(gen.model, task.question(r).text, i) for r in records for i in range(shape.n))


def build_table(experiment: Path, space_path: Path, out: Path | None = None) -> tuple[list[Row], Task, list, CallCache, dict]:
    task = Task(experiment / "task.yaml")
    records = task.split("search")
    space = SearchSpace(space_path)
    cache = CallCache(task.cache_url)
    memo: dict = {}
    client = LLMClient(NoCalls(), cache, max_retries=0)
    rows = []

    async def score(spec):
        pipe = Pipeline(spec, client, sandbox_memo=memo)
        try:
            return await aevaluate(pipe, task, records, "search", concurrency=40)
        finally:
            await client.release_loop()

    for params, spec in enumerate_space(space, task):
        report = asyncio.run(score(spec))
        m = report.measured()
        rows.append(Row(params, spec_fingerprint(spec), m.accuracy, m.calls_per_question,
                        sample_keys(spec, task, records), complete=not report.failures))
    if out:
        out.write_text(json.dumps([{"fingerprint": r.fingerprint, "accuracy": r.accuracy, "params": r.params,
                                    "calls": len(r.keys), "complete": r.complete} for r in rows], indent=1))
    return rows, task, records, cache, memo
