"""What the surrogate understands of a pipeline: a ``Plan``.

Two families cover every layer kind of the shipped spaces:

- sampling: generate (one or several generators, their samples pooled in order; a single
  generator may stop early) -> any of verify (LLM judge) / test (visible tests), each keeping the
  accepted candidates with its none-passed policy -> vote (by answer or behaviour) or the first
  survivor;
- fusion: generate (one generator, n samples) -> optional rank (keep k) -> optional critique ->
  fuse (one output), or generate -> rank (keep 1).

``plan_of`` returns None for anything else; the report then says which layers are not modelled.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from ..llm.models import ModelSpec
from ..spec import PipelineSpec
from ..techniques.critique import CritiqueParams
from ..techniques.fuse import FuseParams
from ..techniques.generate import GenerateParams
from ..techniques.rank import RankParams
from ..techniques.verify import VerifyParams
from .predict import ABSTAIN, FALLBACK, KEEP_ALL

POLICY = {"keep_all": KEEP_ALL, "fallback": FALLBACK, "abstain": ABSTAIN}


def _key(model: ModelSpec, params) -> str:
    """Identity of a configured model call: what keys the cache, minus per-question counts."""
    body = params.model_dump(exclude={"n", "model", "stop", "confidence", "keep", "on_none_passed", "n_out"})
    return json.dumps({"model": model.model_dump(exclude={"price", "timeout_s"}), **body}, sort_keys=True)


@dataclass(frozen=True)
class Generator:
    model: ModelSpec
    params: GenerateParams

    @property
    def key(self) -> str:
        return _key(self.model, self.params)


@dataclass(frozen=True)
class Judge:
    """A configured model call that judges, ranks, critiques or fuses (role says which)."""

    role: str
    model: ModelSpec
    params: VerifyParams | RankParams | CritiqueParams | FuseParams

    @property
    def key(self) -> str:
        return f"{self.role}:{_key(self.model, self.params)}"


@dataclass(frozen=True)
class Check:
    """A filter layer: an LLM judge (``judge`` set) or the visible tests."""

    judge: Judge | None
    policy: int
    best: bool = False          # test keep=best: when nothing passes, keep those passing the most tests


@dataclass(frozen=True)
class Plan:
    sources: tuple[tuple[Generator, int], ...]     # generators and their n, candidates pooled in this order
    checks: tuple[Check, ...] = ()
    vote: bool = False
    by_behaviour: bool = False
    stop: str = "never"                            # never | accepted | settled (the last generator only)
    confidence: float = 0.95
    rank: Judge | None = None
    keep: int = 0                                  # rank keeps this many (fusion family)
    critique: Judge | None = None
    fuse: Judge | None = None

    @property
    def family(self) -> str:
        return "fusion" if (self.fuse is not None or self.rank is not None) else "sampling"

    @property
    def slots(self) -> int:
        return sum(n for _, n in self.sources)

    def generators(self) -> list[Generator]:
        return [g for g, _ in self.sources]

    def judges(self) -> list[Judge]:
        return [j for j in (*(c.judge for c in self.checks), self.rank, self.critique, self.fuse) if j is not None]


def _model(spec: PipelineSpec, name: str) -> ModelSpec:
    return spec.models[name]


def plan_of(spec: PipelineSpec) -> Plan | None:
    layers = list(spec.layers)
    sources = []
    while layers and layers[0].kind == "generate":
        gp = GenerateParams.model_validate(layers.pop(0).params)
        sources.append((Generator(_model(spec, gp.model), gp), gp.n))
    if not sources:
        return None
    stop, confidence = sources[-1][0].params.stop, sources[-1][0].params.confidence
    if any(g.params.stop != "never" for g, _ in sources[:-1]):
        return None  # only the last generator may stop early: the ones before it are its first candidates
    kinds = [layer.kind for layer in layers]
    if kinds and kinds[-1] == "fuse" or "rank" in kinds:
        return _fusion(spec, sources, layers)
    checks = []
    while layers and layers[0].kind in ("verify", "test"):
        layer = layers.pop(0)
        if layer.kind == "verify":
            vp = VerifyParams.model_validate(layer.params)
            checks.append(Check(Judge("verify", _model(spec, vp.model), vp), POLICY[vp.on_none_passed]))
        else:
            if layer.params.get("source", "task") != "task":
                return None
            best = layer.params.get("keep") == "best"
            checks.append(Check(None, KEEP_ALL if best else POLICY[layer.params.get("on_none_passed", "keep_all")], best))
    vote = bool(layers) and layers[0].kind == "vote"
    if vote:
        by_behaviour = layers.pop(0).params.get("by") == "behaviour"
    else:
        by_behaviour = False
    if layers or (stop == "settled" and len(checks) > 1):
        return None
    return Plan(tuple(sources), tuple(checks), vote, by_behaviour, stop, confidence)


def _fusion(spec: PipelineSpec, sources: list, layers: list) -> Plan | None:
    if len(sources) != 1 or sources[0][0].params.stop != "never":
        return None
    rank = critique = fuse = None
    keep = 0
    if layers and layers[0].kind == "rank":
        rp = RankParams.model_validate(layers.pop(0).params)
        rank, keep = Judge("rank", _model(spec, rp.model), rp), rp.keep
    if layers and layers[0].kind == "critique":
        cp = CritiqueParams.model_validate(layers.pop(0).params)
        critique = Judge("critique", _model(spec, cp.model), cp)
    if layers and layers[0].kind == "fuse":
        fp = FuseParams.model_validate(layers.pop(0).params)
        if fp.n_out != 1 and fp.temperature > 0:
            return None
        fuse = Judge("fuse", _model(spec, fp.model), fp)
    if layers or (fuse is None and (rank is None or keep != 1 or critique is not None)):
        return None
    return Plan(tuple(sources), rank=rank, keep=keep, critique=critique, fuse=fuse)


def uncovered(spec: PipelineSpec) -> list[str]:
    """Layer kinds of a pipeline the surrogate cannot model (empty when plan_of covers it)."""
    return [] if plan_of(spec) is not None else sorted({layer.kind for layer in spec.layers})
