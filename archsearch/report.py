"""What a search tells the user: the Pareto front (table and plot), the verifier's measured error
rates, and the chosen pipeline frozen with its search and held-out scores."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
from dataclasses import dataclass
from pathlib import Path

from rich.table import Table

from . import __version__
from .pipeline import Pipeline
from .search import Search, measured_from_attrs
from .spec import Measured, PipelineSpec, Provenance, save_spec
from .tasks.scorers import PythonTests
from .techniques.unit_test import harness, parse_harness, split_tests
from .sandbox import run_python_memo


def describe(spec: PipelineSpec) -> str:
    parts = []
    for layer in spec.layers:
        p = layer.params
        if layer.kind == "generate":
            parts.append(f"generate {p['model']} n={p['n']} T={p['temperature']:g} {p['style']}")
        elif layer.kind == "test":
            policy = "" if p["keep"] == "best" else f", none passed: {p['on_none_passed']}"
            parts.append(f"test ({p['source']} tests, keep {p['keep']}{policy})")
        elif layer.kind == "vote":
            parts.append("vote" + ("(weighted)" if p["weight_by"] != "none" else ""))
        elif layer.kind in ("rank", "fuse"):
            parts.append(f"{layer.kind} {p['model']} " + (f"keep={p['keep']}" if layer.kind == "rank" else f"n_out={p['n_out']}"))
        else:
            parts.append(layer.kind)
    return " -> ".join(parts)


def front_table(search: Search, chosen_number: int | None) -> Table:
    table = Table(title="Pareto front (search split)")
    for col in ("trial", "pipeline", "accuracy [95% CI]", "$/question", "latency p50", "calls/q"):
        table.add_column(col)
    for t in search.front():
        m = measured_from_attrs(t.user_attrs, "search")
        mark = " *" if t.number == chosen_number else ""
        table.add_row(f"{t.number}{mark}", describe(search.spec_of(t)),
                      f"{m.accuracy:.3f} [{m.accuracy_low:.2f}, {m.accuracy_high:.2f}]",
                      f"{m.usd_per_question:.5f}", f"{m.latency_p50_s:.1f}s", f"{m.calls_per_question:.1f}")
    return table


def plot_front(search: Search, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.trial import TrialState

    front = {t.number for t in search.front()}
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for t in search.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        m = measured_from_attrs(t.user_attrs, "search")
        on = t.number in front
        ax.errorbar(m.calls_per_question, m.accuracy, yerr=[[m.accuracy - m.accuracy_low], [m.accuracy_high - m.accuracy]],
                    fmt="o", color="C0" if on else "0.75", ecolor="C0" if on else "0.85", capsize=3, zorder=3 if on else 1)
        if on:
            ax.annotate(str(t.number), (m.calls_per_question, m.accuracy), textcoords="offset points", xytext=(5, 4), fontsize=8)
    ax.set_xscale("symlog")
    ax.set_xlabel("calls per question")
    ax.set_ylabel("accuracy on the search split (95% CI)")
    ax.set_title(f"{search.settings.study_name}: Pareto front in blue")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


@dataclass
class VerifierRates:
    """The visible tests as a verifier, judged against the hidden tests (the fLaws setting)."""

    samples: int
    true_pos: int
    false_pos: int
    true_neg: int
    false_neg: int

    @property
    def tpr(self) -> float:
        return self.true_pos / max(1, self.true_pos + self.false_neg)

    @property
    def fpr(self) -> float:
        return self.false_pos / max(1, self.false_pos + self.true_neg)

    @property
    def precision(self) -> float:
        return self.true_pos / max(1, self.true_pos + self.false_pos)


def visible_test_rates(search: Search, spec: PipelineSpec) -> VerifierRates | None:
    """Run the visible tests and the hidden tests on every sample the spec's generators produce."""
    task = search.settings.task
    if not isinstance(task.scorer, PythonTests) or not any(r.visible_tests for r in search.records):
        return None
    gen_only = spec.model_copy(update={"layers": [layer for layer in spec.layers if layer.kind == "generate"]})
    pipe = Pipeline(gen_only, search.client, sandbox_memo=search.sandbox_memo)

    async def one(record):
        result = await pipe.acall(task.question(record))
        setup, tests = split_tests(record.visible_tests or "")
        rows = []
        for c in result.candidates:
            if not c.answer or not tests:
                continue
            program = task.scorer.program.replace("{prompt}", str(record.fields.get("prompt", ""))).replace("{answer}", c.answer)
            vis = await run_python_memo(harness(program, setup, tests), None, search.sandbox_memo)
            visible = vis.passed and parse_harness(vis.stdout) == 1.0
            hidden = await task.scorer.score(c.answer, record, None, search.sandbox_memo) == 1.0
            rows.append((visible, hidden))
        return rows

    async def all_rows():
        try:
            return [row for rows in await asyncio.gather(*(one(r) for r in search.records)) for row in rows]
        finally:
            await search.client.release_loop()

    rows = asyncio.run(all_rows())
    return VerifierRates(len(rows), sum(v and h for v, h in rows), sum(v and not h for v, h in rows),
                         sum(not v and not h for v, h in rows), sum(not v and h for v, h in rows))


def export(search: Search, trial, test_measured: Measured | None, path: Path,
           extra: dict[str, float] | None = None) -> PipelineSpec:
    spec = search.spec_of(trial)
    metrics = {"search": measured_from_attrs(trial.user_attrs, "search")}
    if extra:
        metrics["search"] = metrics["search"].model_copy(update={"extra": extra})
    if test_measured is not None:
        metrics["test"] = test_measured
    records = search.records
    frozen = spec.model_copy(update={
        "metrics": metrics,
        "provenance": Provenance(archsearch_version=__version__, study=search.settings.study_name, trial=trial.number,
                                 data_hash=search.settings.task.data_hash(records),
                                 created=dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat(),
                                 task_file=os.path.relpath(search.settings.task.path.resolve(), path.resolve().parent)),
    })
    save_spec(frozen, path)
    return frozen


def write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
