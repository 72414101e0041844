"""The frozen pipeline spec (``schema_version: 1``): what production loads and runs.

A spec names its models, its ordered layers with every parameter and full prompt text, the task
signature it was tuned for and, optionally, what was measured and where it came from. Loading
validates all of it; ``dump_spec(load_spec(x))`` is deterministic and round-trips.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import Any

from pydantic import Field

from .errors import SpecError
from .kinds import validate_kind
from .llm.models import ModelSpec, Price  # noqa: F401  (part of the spec's public API)
from .registry import known_kinds, technique_class
from .tasks.extractors import EXTRACTORS
from .tasks.scorers import SCORERS
from .tasks.user_code import add_search_path
from .validation import Strict, validate
from .yamlio import dump_yaml, read_yaml, read_yaml_text

SCHEMA_VERSION = 1


class TaskSignature(Strict):
    template: str = Field(min_length=1, description="how a record's fields become the question text")
    extractor: dict[str, Any] | str
    scorer: dict[str, Any] | str | None = None


class LayerSpec(Strict):
    kind: str
    params: dict[str, Any] = Field(default_factory=dict)


class Measured(Strict):
    split: str
    questions: int = Field(ge=0)
    accuracy: float = Field(ge=0, le=1)
    accuracy_low: float = Field(ge=0, le=1)
    accuracy_high: float = Field(ge=0, le=1)
    usd_per_question: float = Field(ge=0)
    latency_p50_s: float = Field(ge=0)
    latency_p95_s: float = Field(ge=0)
    calls_per_question: float = Field(ge=0)
    extra: dict[str, float] = Field(default_factory=dict)


class Provenance(Strict):
    archsearch_version: str
    study: str | None = None
    trial: int | None = None
    data_hash: str | None = None
    created: str | None = None
    task_file: str | None = Field(None, description="the task YAML it was tuned on, relative to this spec")


class PipelineSpec(Strict):
    schema_version: int
    name: str = Field(min_length=1)
    description: str = ""
    task: TaskSignature
    models: dict[str, ModelSpec] = Field(min_length=1)
    layers: list[LayerSpec] = Field(min_length=1)
    metrics: dict[str, Measured] = Field(default_factory=dict)
    provenance: Provenance | None = None

    def extractor(self):
        return EXTRACTORS[self.task.extractor["kind"]].model_validate(self.task.extractor)

    def scorer(self):
        s = self.task.scorer
        return None if s is None else SCORERS[s["kind"]].model_validate(s)


def parse_spec(data: Any, file: str) -> PipelineSpec:
    if not isinstance(data, dict):
        raise SpecError(file, "", f"expected a mapping at the top level, but got {type(data).__name__}")
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        raise SpecError(file, "schema_version", f"unknown version {version!r} (this archsearch reads {SCHEMA_VERSION})")
    spec = validate(PipelineSpec, data, file)
    task = spec.task.model_copy(update={
        "extractor": validate_kind(EXTRACTORS, spec.task.extractor, file, ("task", "extractor")).model_dump(),
        "scorer": None if spec.task.scorer is None
        else validate_kind(SCORERS, spec.task.scorer, file, ("task", "scorer")).model_dump(),
    })
    layers = [_normalise_layer(i, layer, spec, file) for i, layer in enumerate(spec.layers)]
    _check_early_stops(layers, file)
    return spec.model_copy(update={"task": task, "layers": layers})


EARLY_STOP_PARTNERS = {"accepted": (("test",), ("verify",)),
                       "settled": (("vote",), ("test", "vote"), ("verify", "vote"))}


def early_stop_partners(stop: str, kinds_after: list[str]) -> int:
    """How many layers after a ``stop: accepted | settled`` generator decide when it stops (they run
    with it as one sequential step): the filter, the vote, or a filter then the vote (settled over
    the accepted candidates). 0 when the layers that follow cannot decide."""
    fits = [len(p) for p in EARLY_STOP_PARTNERS.get(stop, ()) if tuple(kinds_after[:len(p)]) == p]
    return max(fits, default=0)


def layer_flow(spec: PipelineSpec) -> list[tuple[float, int]]:
    """Per layer, (calls it makes on one question, the most candidates that reach it), as its
    technique counts them (``Technique.calls``): a filter may keep fewer, never more."""
    flow, candidates = [], 0
    for layer in spec.layers:
        made, after = _layer_calls(layer.model_dump_json(), candidates)
        flow.append((made, candidates))
        candidates = after
    return flow


@functools.lru_cache(maxsize=4096)
def _layer_calls(layer_json: str, candidates: int) -> tuple[float, int]:
    """``Technique.calls`` of a layer given as JSON (a key the cache can hold: a listing asks for the
    same few layers thousands of times)."""
    layer = LayerSpec.model_validate_json(layer_json)
    cls = technique_class(layer.kind)
    return cls(cls.Params.model_validate(layer.params)).calls(candidates)


def layer_places(spec: PipelineSpec) -> list[str]:
    """Each layer's place, ``kind:reach@own:prefix``. ``own`` digests the layer itself (its params
    and model); ``reach`` is the most candidates that can reach it (``layer_flow``); ``prefix``
    digests it with every layer before it. How long a layer takes beyond its calls depends on what
    reaches it (how many candidates, whose programs the sandbox runs), so the surrogate learns a
    layer's non-call time per place, falling back on the same layer reached by as many candidates
    (its shape, ``kind:reach@own``), then by any, then on its kind (``bayes/non_call.py``)."""
    places, prefix = [], hashlib.sha256()
    for layer, (_, reach) in zip(spec.layers, layer_flow(spec)):   # params in their technique's order: parse_spec normalised them
        name = layer.params.get("model")
        body = layer.model_dump_json().encode() + (spec.models[name].model_dump_json().encode() if name in spec.models else b"-")
        prefix.update(body)
        places.append(f"{layer.kind}:{reach}@{hashlib.sha256(body).hexdigest()[:8]}:{prefix.copy().hexdigest()[:12]}")
    return places


def _check_early_stops(layers: list[LayerSpec], file: str) -> None:
    """A generator that stops early needs the layer that decides when right after it."""
    kinds = [layer.kind for layer in layers]
    for i, layer in enumerate(layers):
        stop = layer.params.get("stop", "never") if layer.kind == "generate" else "never"
        if stop == "never" or early_stop_partners(stop, kinds[i + 1:]):
            continue
        wanted = " or ".join(" -> ".join(p) for p in EARLY_STOP_PARTNERS[stop])
        after = " -> ".join(kinds[i + 1:i + 3]) or "nothing"
        raise SpecError(file, f"layers[{i}].params.stop", f"{stop!r} needs {wanted} right after it, but got {after}")


def _normalise_layer(i: int, layer: LayerSpec, spec: PipelineSpec, file: str) -> LayerSpec:
    cls = technique_class(layer.kind)
    if cls is None:
        raise SpecError(file, f"layers[{i}].kind", f"unknown layer kind {layer.kind!r} (expected one of: {', '.join(known_kinds())})")
    params = validate(cls.Params, layer.params, file, ("layers", i, "params"))
    for key in ("model",):
        name = getattr(params, key, None)
        if name is not None and name not in spec.models:
            raise SpecError(file, f"layers[{i}].params.{key}",
                            f"unknown model {name!r} (expected one of: {', '.join(spec.models)})")
    return LayerSpec(kind=layer.kind, params=params.model_dump(mode="json"))


def load_spec(path: str | Path) -> PipelineSpec:
    spec = parse_spec(read_yaml(path), str(path))
    if "python" in (spec.task.extractor.get("kind"), (spec.task.scorer or {}).get("kind")):
        add_search_path(Path(path).parent)  # your own "module:function" beside the spec
    return spec


def loads_spec(text: str, file: str = "<string>") -> PipelineSpec:
    return parse_spec(read_yaml_text(text, file), file)


def dump_spec(spec: PipelineSpec) -> str:
    return dump_yaml(spec.model_dump(mode="json", exclude_none=True))


def save_spec(spec: PipelineSpec, path: str | Path) -> None:
    Path(path).write_text(dump_spec(spec), encoding="utf-8")
