"""Turn what the cache holds into the surrogate's observations, without making any call.

For each generator configuration and search question, the samples already in the cache (sample
0, 1, ... until the first missing one) are scored against the hidden reference and, where the task
has visible tests, run through them: the visible tests are the verifier whose TPR/FPR we learn.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

import numpy as np

from ..llm.cache import CallCache
from ..llm.models import ModelSpec
from ..programs import check_visible
from ..sandbox import SandboxLimits
from ..spec import PipelineSpec
from ..tasks.scorers import PythonTests
from ..tasks.task import Record, Task
from ..techniques.generate import Generate, GenerateParams
from ..techniques.vote import normalise
from .conditional import Judged, KnownSamples
from .model import Observations
from .predict import ABSTAIN, FALLBACK, KEEP_ALL, PipelineFeatures

POLICY = {"keep_all": KEEP_ALL, "fallback": FALLBACK, "abstain": ABSTAIN}


@dataclass(frozen=True)
class Generator:
    model: ModelSpec
    params: GenerateParams

    @property
    def key(self) -> str:
        p = self.params.model_dump(exclude={"n", "model"})
        return json.dumps({"model": self.model.model_dump(exclude={"price"}), **p}, sort_keys=True)


@dataclass(frozen=True)
class Shape:
    """What the surrogate can model of a pipeline: one generator, then optionally tests, a vote."""

    generator: Generator
    n: int
    tested: bool
    policy: int
    vote: bool
    best: bool = False  # test keep=best: when nothing passes, keep the candidates passing the most tests
    behaviour: bool = False  # the vote compares programs by behaviour


def pipeline_shape(spec: PipelineSpec) -> Shape | None:
    layers = spec.layers
    if not layers or layers[0].kind != "generate" or any(x.kind not in ("generate", "test", "vote") for x in layers) \
            or sum(x.kind == "generate" for x in layers) != 1:
        return None
    gp = GenerateParams.model_validate(layers[0].params)
    test = next((x for x in layers if x.kind == "test"), None)
    if test is not None and test.params.get("source") != "task":
        return None
    best = test is not None and test.params.get("keep") == "best"
    policy = KEEP_ALL if test is None or best else POLICY[test.params.get("on_none_passed", "keep_all")]
    vote = next((x for x in layers if x.kind == "vote"), None)
    return Shape(Generator(spec.models[gp.model], gp), gp.n, test is not None, policy, vote is not None, best,
                 vote is not None and vote.params.get("by") == "behaviour")


class Observer:
    def __init__(self, task: Task, records: list[Record], cache: CallCache, memo: dict, max_samples: int = 64) -> None:
        self.task, self.records, self.cache, self.memo, self.max_samples = task, records, cache, memo, max_samples
        self.verifiable = isinstance(task.scorer, PythonTests) and any(r.visible_tests for r in records)
        self.limits = SandboxLimits()  # the test layer's defaults
        self._scored: dict[tuple, Judged] = {}
        self._call_stats: dict[str, dict[str, float]] = {}

    def call_stats(self, gen: Generator) -> dict[str, float]:
        """Mean $ and latency of one call of this generator, from what the cache recorded."""
        if gen.key not in self._call_stats:
            usd, lat = [], []
            for record in self.records[:10]:
                for row in self._rows(gen, record)[:4]:
                    usd.append(row["cost_usd"])
                    lat.append(row["latency_s"])
            self._call_stats[gen.key] = {"usd": float(np.mean(usd)) if usd else 0.0,
                                         "latency": float(np.mean(lat)) if lat else 0.0}
        return self._call_stats[gen.key]

    def _samples(self, gen: Generator, record: Record) -> list[str]:
        return [row["text"] for row in self._rows(gen, record)]

    def _rows(self, gen: Generator, record: Record) -> list[dict]:
        technique = Generate(gen.params)
        out = []
        question = self.task.question(record)
        for i in range(self.max_samples):
            row = self.cache.get(technique.sample_key(gen.model, question.text, i))
            if row is None:
                break
            out.append(row)
        return out

    async def _judge(self, record: Record, text: str) -> Judged:
        key = (record.id, text)
        if key not in self._scored:
            answer = self.task.extractor(text)
            hidden = bool(answer) and await self.task.scorer.score(answer, record, None, self.memo) == 1.0
            rate, behaviour = None, None
            if self.verifiable and record.visible_tests:  # exactly what the test and vote layers run
                check = await check_visible(self.task.scorer.program, record.fields, answer, record.visible_tests,
                                            self.limits, self.memo) if answer else None
                rate, behaviour = (check.rate, check.behaviour) if check else (0.0, None)
            self._scored[key] = Judged(hidden, rate, normalise(answer), behaviour)
        return self._scored[key]

    def testable(self) -> np.ndarray:
        """[Q] which search questions a test layer can verify (it keeps every candidate elsewhere)."""
        return np.array([self.verifiable and bool(r.visible_tests) for r in self.records], bool)

    def known(self, generators: list[Generator], judged: list | None = None):
        """The samples already bought, for replay (``judged``: reuse a ``judged()`` result)."""
        return KnownSamples.from_judged(judged if judged is not None else self.judged(generators), self.testable())

    def judged(self, generators: list[Generator]) -> list[list[list[Judged]]]:
        """Every cached sample of every (generator, search question) cell, judged: [g][q][sample]."""
        out = [[[] for _ in self.records] for _ in generators]

        async def cell(gi: int, gen: Generator, qi: int, record: Record):
            out[gi][qi] = [await self._judge(record, t) for t in self._samples(gen, record)]

        async def all_cells():
            await asyncio.gather(*(cell(gi, g, qi, r) for gi, g in enumerate(generators) for qi, r in enumerate(self.records)))

        asyncio.run(all_cells())
        return out

    def observe(self, generators: list[Generator], judged: list | None = None) -> Observations:
        """Counts per cell for the model (``judged``: reuse a ``judged()`` result)."""
        rows = []
        for gi, cells in enumerate(judged if judged is not None else self.judged(generators)):
            for qi, judged in enumerate(cells):
                if not judged:
                    continue
                y = sum(j.correct for j in judged)
                seen = all(j.visible is not None for j in judged)
                tp = sum(j.correct and bool(j.visible) for j in judged)
                fp = sum((not j.correct) and bool(j.visible) for j in judged)
                rows.append((qi, gi, len(judged), y, tp, fp, seen))
        rows.sort()
        arr = np.array(rows, dtype=float).reshape(-1, 7)
        V = 1 if self.verifiable else 0
        return Observations(q=arr[:, 0].astype(int), g=arr[:, 1].astype(int), n=arr[:, 2].astype(int),
                            y=arr[:, 3].astype(int), tp=arr[:, 4:5].astype(int)[:, :V], fp=arr[:, 5:6].astype(int)[:, :V],
                            seen=arr[:, 6:7].astype(bool)[:, :V], n_questions=len(self.records),
                            n_generators=len(generators), n_verifiers=V,
                            generator_names=[g.key for g in generators], verifier_names=["visible tests"][:V],
                            generator_model=model_index(generators))


def model_index(generators: list[Generator]) -> np.ndarray:
    """[G] one index per distinct model (price aside): greedy and sampled settings of a model share it."""
    ids: dict[str, int] = {}
    keys = [json.dumps(g.model.model_dump(exclude={"price"}), sort_keys=True) for g in generators]
    return np.array([ids.setdefault(k, len(ids)) for k in keys], int)


def features(shapes: list[Shape], generators: list[Generator]) -> PipelineFeatures:
    index = {g.key: i for i, g in enumerate(generators)}
    return PipelineFeatures(g=np.array([index[s.generator.key] for s in shapes]), n=np.array([s.n for s in shapes]),
                            v=np.array([0 if s.tested else -1 for s in shapes]), policy=np.array([s.policy for s in shapes]),
                            vote=np.array([s.vote for s in shapes]), best=np.array([s.best for s in shapes]),
                            behaviour=np.array([s.behaviour for s in shapes]))
