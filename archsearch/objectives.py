"""Objectives (``objectives/*.yaml``): what to optimise, the constraints, how the final pipeline is
chosen, and the search budget."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from .spec import Measured
from .validation import Strict, validate
from .yamlio import read_yaml

Metric = Literal["accuracy", "usd_per_question", "latency_p50_s", "latency_p95_s", "calls_per_question"]

# Latency is compared at this many significant figures: replaying a pool, the runtime's own time
# (votes, sandbox memo reads) is measured live, and its jitter of a fraction of a millisecond must not
# put one pipeline ahead of another, nor make two runs of one search part ways.
LATENCY_FIGURES = 3


def compared(metric: str, value):
    """A metric's value (a number or an array) as the search compares pipelines by it: latency
    rounded to ``LATENCY_FIGURES`` significant figures, the others as they are."""
    if not metric.startswith("latency"):
        return value
    v = np.asarray(value, float)
    decimals = LATENCY_FIGURES - 1 - np.floor(np.log10(np.where(v == 0, 1.0, np.abs(v))))
    scale = 10.0 ** np.abs(decimals)   # whole powers of ten: exact, where 10 ** -1 is not
    out = np.where(decimals >= 0, np.round(v * scale) / scale, np.round(v / scale) * scale)
    return float(out) if out.ndim == 0 else out


class MetricGoal(Strict):
    name: Metric
    direction: Literal["maximize", "minimize"]


class Bound(Strict):
    max: float | None = None
    min: float | None = None


class Selection(Strict):
    """The chosen pipeline: best ``maximize`` (or ``minimize``) among feasible Pareto points."""

    maximize: Metric | None = "accuracy"
    minimize: Metric | None = None
    tie_break: Metric = "calls_per_question"
    min_p_beats_baseline: float = Field(0.9, ge=0, le=1, description="a choice must beat the space's cheapest "
                                        "pipeline with this posterior probability, else the baseline is exported")
    rescore_top: int = Field(3, ge=1, le=20, description="how many are compared with the baseline on the select split "
                             "(paired, through Thresholdout)")


class SearchBudget(Strict):
    usd: float | None = Field(None, ge=0)
    calls: int | None = Field(None, ge=0)
    wall_minutes: float | None = Field(None, gt=0)


class Halving(Strict):
    """Successive halving: a new pipeline is scored on ``first_rung`` questions, then on
    ``reduction_factor`` times as many, and so on up to the whole search split. At each rung Optuna's
    SuccessiveHalvingPruner ranks it by accuracy; it is stopped only if the pruner says so AND a
    finished pipeline beats it there by more than ``margin`` at no more calls (a cheap pipeline
    that is less accurate can still be on the front)."""

    first_rung: int = Field(10, ge=1)
    reduction_factor: int = Field(2, ge=2, le=10)
    margin: float = Field(0.1, ge=0, le=1, description="accuracy slack before a rung point counts as dominated")


class Objective(Strict):
    name: str
    metrics: list[MetricGoal] = Field(min_length=1)
    constraints: dict[Metric, Bound] = Field(default_factory=dict)
    select: Selection = Field(default_factory=Selection)
    budget: SearchBudget = Field(default_factory=SearchBudget)
    halving: Halving = Field(default_factory=Halving)
    call_timeout_s: float = Field(60.0, gt=0, le=3600, description="per-call timeout for models that set none; "
                                  "a held request counts as a retryable failure")

    @model_validator(mode="after")
    def _distinct(self):
        names = [m.name for m in self.metrics]
        if len(set(names)) != len(names):
            raise ValueError(f"each metric at most once, but got {names}")
        return self

    @property
    def directions(self) -> list[str]:
        return [m.direction for m in self.metrics]

    def values(self, measured: Measured) -> list[float]:
        """The trial's objective values, as the search compares them (``compared``)."""
        return [float(compared(m.name, getattr(measured, m.name))) for m in self.metrics]

    def violations(self, measured: Measured) -> dict[str, float]:
        """Per constraint, by how much it is exceeded (Optuna's convention: <= 0 is feasible)."""
        out = {}
        for name, bound in self.constraints.items():
            value = float(getattr(measured, name))
            if bound.max is not None:
                out[f"{name}<={bound.max:g}"] = value - bound.max
            if bound.min is not None:
                out[f"{name}>={bound.min:g}"] = bound.min - value
        return out

    def feasible(self, measured: Measured) -> bool:
        return all(v <= 0 for v in self.violations(measured).values())


def load_objective(path: str | Path) -> Objective:
    return validate(Objective, read_yaml(path), str(path))
