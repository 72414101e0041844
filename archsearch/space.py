"""Search spaces (``spaces/*.yaml``): which layers may appear, in what order, with what ranges.

Entries of ``layers`` are run in order and are either a layer template
``{kind, params, optional?, requires?}`` or a block ``{group: name, layers: [...], optional?, top_k?}``,
``{repeat: {min, max}, layers: [...]}`` or ``{one_of: {name: [layers...], ...}}`` (exactly one branch). A param value is a literal or one of
``{choice: [...]}``, ``{int: [low, high], log?}``, ``{float: [low, high], log?}``; the param ``combo``
takes ``{choice: [{...}, ...]}`` and merges the chosen mapping into the params (for settings that
only make sense together, e.g. n=1 with temperature 0).

A space draws values through anything with Optuna's ``suggest_*`` methods (an Optuna trial, or
``RandomSuggester`` for tests), so this module itself does not need Optuna.
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import Field, model_validator

from .candidates import LISTED_AT_MOST, walk_space
from .errors import SpecError, format_path
from .llm.models import ModelSpec
from .registry import technique_class
from .spec import SCHEMA_VERSION, PipelineSpec, early_stop_partners, layer_flow, parse_spec
from .tasks.scorers import PythonTests
from .tasks.task import Task
from .validation import Strict, validate
from .yamlio import read_yaml


class Suggester(Protocol):
    def suggest_categorical(self, name: str, choices: list) -> Any: ...
    def suggest_int(self, name: str, low: int, high: int, *, log: bool = False) -> int: ...
    def suggest_float(self, name: str, low: float, high: float, *, log: bool = False) -> float: ...


class RandomSuggester:
    """Draws uniformly, for property tests and random search without Optuna."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.params: dict[str, Any] = {}

    def suggest_categorical(self, name, choices):
        return self.params.setdefault(name, self.rng.choice(list(choices)))

    def suggest_int(self, name, low, high, *, log=False):
        return self.params.setdefault(name, self.rng.randint(low, high))

    def suggest_float(self, name, low, high, *, log=False):
        return self.params.setdefault(name, self.rng.uniform(low, high))


class _Range(Strict):
    min: int = Field(ge=0, le=20)
    max: int = Field(ge=0, le=20)

    @model_validator(mode="after")
    def _ordered(self):
        if self.min > self.max:
            raise ValueError(f"`min <= max` must hold, but got min={self.min}, max={self.max}")
        return self


class _Block(Strict):
    group: str | None = None
    repeat: _Range | None = None
    top_k: _Range | None = None
    optional: bool = False
    layers: list[Any] = Field(min_length=1)


class _Choice(Strict):
    """``{one_of: {name: [layers...], ...}, group?}``: exactly one of several alternative layer lists."""

    group: str | None = None
    one_of: dict[str, list[Any]] = Field(min_length=1)


class _Template(Strict):
    kind: str
    params: dict[str, Any] = Field(default_factory=dict)
    optional: bool = False
    requires: Literal["visible_tests"] | None = None


class _SpaceFile(Strict):
    name: str
    description: str = ""
    models: dict[str, dict[str, Any]] = Field(min_length=1)
    instructions: dict[str, str] = Field(default_factory=dict, description="named instruction texts a generate "
                                         "layer's `instruction` chooses among (`default`: the style's own)")
    demo_seed: int = Field(0, description="which worked examples `demos: k` shows: the first k of the demos split "
                                          "shuffled with this seed")
    layers: list[dict[str, Any]] = Field(min_length=1)


DEFAULT_INSTRUCTION = "default"
MERGED = ("combo", "prompt")   # params whose chosen mapping is merged into the layer's params


def _label(choice: Any) -> Any:
    """Optuna categorical choices must be scalars: mappings are named by their compact JSON."""
    return json.dumps(choice, sort_keys=True, separators=(",", ":")) if isinstance(choice, dict) else choice


class SearchSpace:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.file = str(self.path)
        cfg = validate(_SpaceFile, read_yaml(self.path), self.file)
        for name, model in cfg.models.items():  # e.g. a literal api_key is refused here, before anything runs
            validate(ModelSpec, model, self.file, ("models", name))
        self.name, self.description, self.models, self.entries = cfg.name, cfg.description, cfg.models, cfg.layers
        if DEFAULT_INSTRUCTION in cfg.instructions:
            raise SpecError(self.file, f"instructions.{DEFAULT_INSTRUCTION}", "is reserved for the style's own instruction")
        self.instructions, self.demo_seed = cfg.instructions, cfg.demo_seed
        self._check(self.entries, ("layers",))
        self._listed: list[tuple[Task | None, list]] = []        # pipelines() per task
        self._walks: list[tuple[Task | None, int, list]] = []    # _walked() per task and limit

    # -- validation of the space file itself -------------------------------------------------
    def _check(self, entries: list, path: tuple) -> None:
        for i, entry in enumerate(entries):
            where = path + (i,)
            if isinstance(entry, dict) and "one_of" in entry:
                choice = validate(_Choice, entry, self.file, where)
                for branch, layers in choice.one_of.items():
                    if not isinstance(layers, list) or not layers:
                        raise SpecError(self.file, format_path(where + ("one_of", branch)), "expected a non-empty list of layers")
                    self._check(layers, where + ("one_of", branch))
                continue
            if isinstance(entry, dict) and "layers" in entry:
                block = validate(_Block, entry, self.file, where)
                if block.top_k is not None and block.top_k.min < 1:
                    raise SpecError(self.file, format_path(where + ("top_k", "min")), "expected at least 1")
                self._check(block.layers, where + ("layers",))
                continue
            template = validate(_Template, entry, self.file, where)
            for key, value in template.params.items():
                self._check_range(value, where + ("params", key))
            if template.kind == "generate":
                self._check_prompt_options(template.params, where + ("params",))

    def _check_prompt_options(self, params: dict, where: tuple) -> None:
        """``instruction`` names an entry of ``instructions`` (or ``default``); ``demos`` is a count;
        ``prompt`` chooses among mappings of the two (the variants that go together)."""
        def options(key: str):
            value = params[key]
            if isinstance(value, dict) and "choice" in value:
                return [(where + (key, "choice", i), v) for i, v in enumerate(value["choice"])]
            return [(where + (key,), value)]

        for key in ("instruction", "demos"):
            for at, value in options(key) if key in params else []:
                self._check_prompt_value(key, value, at)
        for merged in MERGED:   # a chosen mapping lands in the params, so a combo may carry a prompt too
            for at, mapping in options(merged) if merged in params else []:
                if merged == "prompt" and (not isinstance(mapping, dict) or not mapping
                                           or set(mapping) - {"instruction", "demos"}):
                    raise SpecError(self.file, format_path(at), "expected a mapping of instruction and/or demos")
                for key in ("instruction", "demos"):
                    if isinstance(mapping, dict) and key in mapping:
                        self._check_prompt_value(key, mapping[key], at + (key,))

    def _check_prompt_value(self, key: str, value: Any, at: tuple) -> None:
        if key == "instruction" and value != DEFAULT_INSTRUCTION and value not in self.instructions:
            names = ", ".join([DEFAULT_INSTRUCTION, *self.instructions])
            raise SpecError(self.file, format_path(at), f"expected one of: {names} (names under `instructions`), but got {value!r}")
        if key == "demos" and not (isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 64):
            raise SpecError(self.file, format_path(at), f"expected a number of worked examples from 0 to 64, but got {value!r}")

    def _check_range(self, value: Any, where: tuple) -> None:
        if not isinstance(value, dict):
            return
        if "choice" in value:
            if set(value) != {"choice"} or not isinstance(value["choice"], list) or not value["choice"]:
                raise SpecError(self.file, format_path(where), "expected {choice: [non-empty list]}")
        elif "int" in value or "float" in value:
            kind = "int" if "int" in value else "float"
            bounds = value[kind]
            if set(value) - {kind, "log"} or not isinstance(bounds, list) or len(bounds) != 2 \
                    or not isinstance(value.get("log", False), bool):
                raise SpecError(self.file, format_path(where), f"expected {{{kind}: [low, high], log?: bool}}")
            if not all(isinstance(b, (int, float)) and not isinstance(b, bool) and abs(b) < 1e9 for b in bounds) \
                    or bounds[0] > bounds[1] or (kind == "int" and not all(float(b).is_integer() for b in bounds)):
                raise SpecError(self.file, format_path(where + (kind,)), f"`low <= high` must hold, but got {bounds}")

    # -- drawing a pipeline ------------------------------------------------------------------
    def _value(self, s: Suggester, name: str, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        if "choice" in value:
            labels = [_label(c) for c in value["choice"]]
            picked = s.suggest_categorical(name, labels)
            return value["choice"][labels.index(picked)]
        if "int" in value:
            return s.suggest_int(name, int(value["int"][0]), int(value["int"][1]), log=bool(value.get("log")))
        if "float" in value:
            return s.suggest_float(name, float(value["float"][0]), float(value["float"][1]), log=bool(value.get("log")))
        return value

    def _layers(self, s: Suggester, entries: list, prefix: str, task: Task | None) -> list[dict]:
        out: list[dict] = []
        for i, entry in enumerate(entries):
            name = f"{prefix}{entry.get('group', i)}"
            if "one_of" in entry:
                branch = s.suggest_categorical(f"{name}.branch", list(entry["one_of"]))
                out.extend(self._layers(s, entry["one_of"][branch], f"{name}.{branch}.", task))
                continue
            if "layers" in entry:
                if entry.get("optional") and not s.suggest_categorical(f"{name}.enabled", [True, False]):
                    continue
                rep, top = entry.get("repeat"), entry.get("top_k")
                children = entry["layers"]
                if top:  # Archon's "top-k models": the first k entries of a list ordered best first
                    children = children[: s.suggest_int(f"{name}.top_k", top["min"], min(top["max"], len(children)))]
                times = s.suggest_int(f"{name}.repeat", rep["min"], rep["max"]) if rep else 1
                for r in range(times):
                    out.extend(self._layers(s, children, f"{name}.{r}." if rep else f"{name}.", task))
                continue
            if entry.get("requires") == "visible_tests" and task is not None and not any(r.visible_tests for r in task.records):
                continue
            if entry.get("optional") and not s.suggest_categorical(f"{name}.enabled", [True, False]):
                continue
            params = {}
            for key, value in (entry.get("params") or {}).items():
                chosen = self._value(s, f"{name}.{key}", value)
                if key in MERGED:
                    params.update(chosen)
                else:
                    params[key] = chosen
            if entry["kind"] == "generate":
                params = self._prompt(params, task)
            cls = technique_class(entry["kind"])
            if cls is not None and cls.needs_program and "program" not in params and task is not None \
                    and isinstance(task.scorer, PythonTests):
                params["program"] = task.scorer.program
            out.append({"kind": entry["kind"], "params": params})
        return out

    def _prompt(self, params: dict, task: Task | None) -> dict:
        """A generator's instruction name becomes its text and ``demos: k`` the k worked examples
        themselves, so the frozen spec needs nothing else to run."""
        params = dict(params)
        name = params.pop("instruction", DEFAULT_INSTRUCTION)
        if name != DEFAULT_INSTRUCTION:
            params["instruction"] = self.instructions[name]
        k = params.pop("demos", 0)
        if k:
            if task is None:
                raise SpecError(self.file, "demos", "worked examples come from a task's demos split: build with a task")
            params["demos"] = task.demonstrations(k, self.demo_seed)
        return params

    def models_spec(self) -> dict[str, ModelSpec]:
        """The space's models, validated."""
        return {name: ModelSpec.model_validate(model) for name, model in self.models.items()}

    def baseline(self, task: Task | None = None) -> tuple[dict[str, Any], PipelineSpec]:
        """(params, spec) of the cheapest pipeline: the fewest calls per question by its layers' own
        count; on ties the fewest layers (greedy alone, not greedy plus a test of its one answer), then
        the first. Every choice must beat it."""
        rows = self.pipelines(task)
        return rows[min(range(len(rows)), key=lambda i: (calls_per_question(rows[i][1]), len(rows[i][1].layers), i))]

    def pipelines(self, task: Task | None = None) -> list[tuple[dict[str, Any], PipelineSpec]]:
        """Every pipeline of the space, as ``enumerate_space`` lists them (treat the list as read-only),
        built once per task from the task's one walk of the space: a search asks for it four times (its
        baseline twice, the sampler, the report), and listing the HumanEval space's 4,032 took about a
        second each time."""
        for listed_for, rows in self._listed:
            if listed_for is task:
                return rows
        rows = [(params, self.spec_of(layers, task)) for params, layers in self._walked(task, LISTED_AT_MOST)]
        self._listed.append((task, rows))
        return rows

    def count(self, task: Task | None = None, at_most: int = LISTED_AT_MOST) -> int:
        """How many pipelines the space holds, counted up to ``at_most`` without building them (building
        and validating is most of a listing: 4 s for the first 20,000 of a space too large to list)."""
        return len(self._walked(task, at_most))

    def _walked(self, task: Task | None, at_most: int) -> list[tuple[dict[str, Any], list[dict]]]:
        """(params, layers) of the first ``at_most`` pipelines, walked once per task: a walk that
        stopped short of its limit is the whole space, and serves any later limit."""
        for walked_for, limit, rows in self._walks:
            if walked_for is task and (at_most <= limit or len(rows) < limit):
                return rows[:at_most]
        rows = walk_space(self, task, at_most)
        self._walks.append((task, at_most, rows))
        return rows

    def decide(self, s: Suggester, task: Task | None = None) -> list[dict]:
        """The layers of one pipeline, every decision taken through ``s``; not yet a spec."""
        return _early_stops_with_partners(_greedy_once(self._layers(s, self.entries, "", task)))

    def build(self, s: Suggester, task: Task | None = None) -> PipelineSpec:
        return self.spec_of(self.decide(s, task), task)

    def spec_of(self, layers: list[dict], task: Task | None = None) -> PipelineSpec:
        """The validated spec of decided ``layers``, named by its content."""
        used = {p["params"].get("model") for p in layers} - {None}
        models = {k: v for k, v in self.models.items() if k in used} or dict(list(self.models.items())[:1])
        signature = {"template": "{question}", "extractor": {"kind": "text"}}
        if task is not None:
            signature = {"template": task.template, "extractor": task.extractor.model_dump(),
                         "scorer": task.scorer.model_dump()}
        body = {"schema_version": SCHEMA_VERSION, "name": self.name, "task": signature, "models": models, "layers": layers}
        digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:10]
        body["name"] = f"{self.name}-{digest}"
        return parse_spec(body, f"{self.file} (drawn pipeline)")


def _greedy_once(layers: list[dict]) -> list[dict]:
    """A greedy generator right before another greedy generator of the same model adds nothing (a
    second temperature-0 answer is the first again): the earlier one is dropped."""
    def greedy(layer: dict) -> bool:
        return layer["kind"] == "generate" and layer["params"].get("temperature", 0.0) == 0

    return [layer for i, layer in enumerate(layers)
            if not (greedy(layer) and i + 1 < len(layers) and greedy(layers[i + 1])
                    and layers[i + 1]["params"].get("model") == layer["params"].get("model"))]


def _early_stops_with_partners(layers: list[dict]) -> list[dict]:
    """A drawn ``stop: accepted | settled`` applies only where the layers that decide when follow
    the generator (and n > 1); elsewhere the generator draws all n, as ``stop: never``."""
    out = []
    kinds = [layer["kind"] for layer in layers]
    for i, layer in enumerate(layers):
        params = layer["params"]
        stop = params.get("stop", "never") if layer["kind"] == "generate" else "never"
        if stop != "never" and (not early_stop_partners(stop, kinds[i + 1:]) or params.get("n", 1) <= 1):
            stop, layer = "never", {**layer, "params": {k: v for k, v in params.items() if k != "stop"}}
        if layer["kind"] == "generate" and stop != "settled" and "confidence" in layer["params"]:
            layer = {**layer, "params": {k: v for k, v in layer["params"].items() if k != "confidence"}}  # settled's only
        out.append(layer)
    return out


def calls_per_question(spec: PipelineSpec) -> float:
    """The calls a pipeline's layers make on one question, as they count them."""
    return sum(made for made, _ in layer_flow(spec))


def spec_fingerprint(spec: PipelineSpec) -> str:
    """Identity of what a pipeline does (layers and models), ignoring names and measurements."""
    body = {"models": {k: v.model_dump() for k, v in spec.models.items()},
            "layers": [layer.model_dump() for layer in spec.layers]}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]

