"""What the surrogate understands of a pipeline: a ``Plan``, its layers in order.

Every built-in technique has a surrogate step (``bayes/steps``): how its layer changes the
simulated candidates of a question. A pipeline's plan is its layers, each with its step, grouped
the way the runtime runs them (``Pipeline.steps``: consecutive generators as one concurrent step; a
generator that stops early together with the layers that decide when). So any order the runtime
accepts is modelled. A layer whose technique has no step (a plugin's) leaves only the pipelines
containing it uncovered: ``plan_of`` returns None for those.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..llm.models import ModelSpec
from ..pipeline import Pipeline
from ..spec import PipelineSpec
from ..techniques.base import model_identity
from ..techniques.generate import Generate
from .steps import step_class

JUDGE_COUNTS = {"n", "model", "stop", "confidence", "keep", "on_none_passed", "n_out", "n_calls", "program",
                "timeout_s", "memory_mb", "weight_by", "verdict_weight", "by"}


@dataclass(frozen=True)
class Layer:
    kind: str
    params: Any                    # the technique's validated params
    model: ModelSpec | None        # the model it calls (None: it calls none)
    key: str                       # generate: the generator's identity; else kind + what keys its calls
    start: int = 0                 # generate: its first sample index (after earlier layers of the generator)
    place: str = ""                # kind, shape and the pipeline up to it (``spec.layer_places``)

    @property
    def n(self) -> int:
        return getattr(self.params, "n", 0)


@dataclass(frozen=True)
class Plan:
    layers: tuple[Layer, ...]
    steps: tuple[tuple[int, ...], ...]     # layer indices, grouped as the runtime runs them

    @property
    def signature(self) -> tuple:
        """Plans with one signature are simulated together: the same kinds in the same steps."""
        return tuple(tuple(self.layers[i].kind for i in step) + (self.sequential(step),) for step in self.steps)

    def sequential(self, step: tuple[int, ...]) -> str:
        first = self.layers[step[0]]
        return first.params.stop if first.kind == "generate" else "never"

    def generators(self) -> list[Layer]:
        return [layer for layer in self.layers if layer.kind == "generate"]

    def judges(self) -> list[Layer]:
        return [layer for layer in self.layers if layer.kind != "generate" and layer.model is not None]

    @property
    def slots(self) -> int:
        """Candidates the pipeline can make on a question (every generator's n, every fuse's outputs)."""
        return sum(_adds(layer) for layer in self.layers)


def _adds(layer: Layer) -> int:
    if layer.kind == "generate":
        return layer.params.n
    if layer.kind == "fuse":
        return layer.params.n_out if layer.params.temperature > 0 else 1
    return 0


def judge_key(kind: str, model: ModelSpec | None, params) -> str:
    """What keys a judging layer's calls: its model and every param but per-question counts and policies."""
    body = params.model_dump(mode="json", exclude=JUDGE_COUNTS)
    if kind == "test" and params.source != "task":   # the calls made are the tests: how many is part of them
        body["n_calls"] = params.n_calls
    return f"{kind}:" + json.dumps({"model": model_identity(model) if model else None, **body}, sort_keys=True)


def plan_of(spec: PipelineSpec) -> Plan | None:
    pipeline = Pipeline(spec, client=_NO_CLIENT)
    layers: list[Layer] = []
    drawn: dict[str, int] = {}
    for technique, place in zip(pipeline.techniques, pipeline.layer_places):
        if step_class(technique.kind) is None or not step_class(technique.kind).covers(technique.params):
            return None
        name = getattr(technique.params, "model", None)
        model = spec.models[name] if name is not None else None
        if isinstance(technique, Generate):
            key = technique.identity(model)
            layers.append(Layer("generate", technique.params, model, key, drawn.get(key, 0), place))
            drawn[key] = drawn.get(key, 0) + technique.params.n
        else:
            layers.append(Layer(technique.kind, technique.params, model, judge_key(technique.kind, model, technique.params),
                                place=place))
    return Plan(tuple(layers), tuple(tuple(s) for s in pipeline.steps()))


def written_tests(layer: Layer) -> bool:
    """A test layer whose tests a model writes (its calls are the tests, not a verdict per candidate)."""
    return layer.kind == "test" and layer.params.source != "task"


def uncovered(spec: PipelineSpec) -> list[str]:
    """Layer kinds of a pipeline the surrogate cannot model (empty when plan_of covers it)."""
    if plan_of(spec) is not None:
        return []
    return sorted({layer.kind for layer in spec.layers
                   if step_class(layer.kind) is None or not step_class(layer.kind).covers(_params(layer))})


def _params(layer):
    from ..registry import technique_class

    return technique_class(layer.kind).Params.model_validate(layer.params)


class _NoClient:
    """Building a Pipeline needs a client; planning never calls one."""


_NO_CLIENT: Any = _NoClient()
