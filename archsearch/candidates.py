"""Candidate pipelines of a space: every one of them (floats on a grid), drawn ones, and the local
moves around a pipeline that the surrogate sampler scores when a space is too large to list."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .spec import PipelineSpec
    from .tasks.task import Task


LISTED_AT_MOST = 20_000   # a listing stops here: a space this large is searched by drawing, not listing


class Space(Protocol):
    """What walking a space needs of it: its decisions, then a spec of what was decided
    (``space.SearchSpace`` is one; it walks itself through ``walk_space``, so this file cannot import it)."""
    entries: list

    def decide(self, s: Any, task: Task | None = None) -> list[dict]: ...

    def spec_of(self, layers: list[dict], task: Task | None = None) -> PipelineSpec: ...


class Drawer:
    """Takes the ``fixed`` value of a decision where it still fits, else draws uniformly; remembers
    each decision's options, so a caller can move one decision of a pipeline (a local move)."""

    def __init__(self, rng: random.Random, fixed: dict[str, Any] | None = None) -> None:
        self.rng, self.fixed = rng, dict(fixed or {})
        self.params: dict[str, Any] = {}
        self.options: dict[str, tuple] = {}

    def _take(self, name: str, fits, draw):
        value = self.fixed.get(name)
        self.params[name] = value if name in self.fixed and fits(value) else draw()
        return self.params[name]

    def suggest_categorical(self, name, choices):
        self.options[name] = ("choice", list(choices))
        return self._take(name, lambda v: v in choices, lambda: self.rng.choice(list(choices)))

    def suggest_int(self, name, low, high, *, log=False):
        self.options[name] = ("int", low, high)
        return self._take(name, lambda v: isinstance(v, int) and low <= v <= high, lambda: self.rng.randint(low, high))

    def suggest_float(self, name, low, high, *, log=False):
        self.options[name] = ("float", low, high, log)
        return self._take(name, lambda v: isinstance(v, float) and low <= v <= high, lambda: self.rng.uniform(low, high))


def neighbours(params: dict[str, Any], options: dict[str, tuple], rng: random.Random) -> list[dict[str, Any]]:
    """Pipelines one decision away: another option of a choice, an int one step off, a float nudged."""
    out = []
    for name, option in options.items():
        value = params.get(name)
        if option[0] == "choice":
            out += [{**params, name: other} for other in option[1] if other != value]
        elif option[0] == "int":
            out += [{**params, name: v} for v in (value - 1, value + 1) if option[1] <= v <= option[2]]
        else:
            span = option[2] - option[1]
            out.append({**params, name: min(option[2], max(option[1], value + rng.gauss(0.0, 0.1 * span)))})
    return out


def has_floats(space: Space) -> bool:
    """The space has a float range: its pipelines cannot all be listed."""
    def walk(value: Any) -> bool:
        if isinstance(value, dict):
            return "float" in value or any(walk(v) for v in value.values())
        if isinstance(value, list):
            return any(walk(v) for v in value)
        return False
    return walk(space.entries)


class _Enumerator:
    """Replays fixed decisions and takes the first option of each new one, recording its options."""

    def __init__(self, fixed: dict[str, Any]) -> None:
        self.fixed, self.params, self.decisions = fixed, {}, []

    def _pick(self, name, options):
        value = self.fixed[name] if name in self.fixed else options[0]
        if name not in self.fixed:
            self.decisions.append((name, options))
        self.params[name] = value
        return value

    def suggest_categorical(self, name, choices):
        return self._pick(name, list(choices))

    def suggest_int(self, name, low, high, *, log=False):
        return self._pick(name, list(range(low, high + 1)))

    def suggest_float(self, name, low, high, *, log=False):
        return self._pick(name, [low + (high - low) * i / 4 for i in range(5)])


def enumerate_space(space: Space, task: Task | None, limit: int = LISTED_AT_MOST) -> list[tuple[dict[str, Any], PipelineSpec]]:
    """Every pipeline of the space (floats on a 5-point grid), depth first, at most ``limit``."""
    return [(params, space.spec_of(layers, task)) for params, layers in walk_space(space, task, limit)]


def walk_space(space: Space, task: Task | None, limit: int) -> list[tuple[dict[str, Any], list[dict]]]:
    """(params, decided layers) of the pipelines ``enumerate_space`` lists, without building specs."""
    out, stack = [], [{}]
    while stack and len(out) < limit:
        fixed = stack.pop()
        e = _Enumerator(fixed)
        layers = space.decide(e, task)
        out.append((dict(e.params), layers))
        for i, (name, options) in enumerate(e.decisions):
            prefix = {**fixed, **{n: e.params[n] for n, _ in e.decisions[:i]}}
            stack.extend({**prefix, name: option} for option in options[1:])
    return out
