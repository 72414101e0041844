"""What a search tells the user: the Pareto front (table and plot), the verifier's measured error
rates, and the chosen pipeline frozen with its search and held-out scores."""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass
from pathlib import Path

from rich.table import Table

from . import __version__
from .search import Search, measured_from_attrs
from .spec import Measured, PipelineSpec, Provenance, save_spec


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
    labels: dict[tuple[float, float], list[str]] = {}
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for t in search.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        m = measured_from_attrs(t.user_attrs, "search")
        on = t.number in front
        ax.errorbar(m.calls_per_question, m.accuracy, yerr=[[m.accuracy - m.accuracy_low], [m.accuracy_high - m.accuracy]],
                    fmt="o", color="C0" if on else "0.75", ecolor="C0" if on else "0.85", capsize=3, zorder=3 if on else 1)
        if on:
            labels.setdefault((m.calls_per_question, m.accuracy), []).append(str(t.number))
    for (x, y), names in labels.items():
        ax.annotate("trial " + ",".join(names), (x, y), textcoords="offset points", xytext=(5, 4), fontsize=8)
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
    """The visible tests judged against the hidden ones on every pooled sample of the spec's generator."""
    from .bayes.observe import Observer, pipeline_shape

    shape = pipeline_shape(spec)
    if shape is None or search.client.cache is None:
        return None
    observer = Observer(search.settings.task, search.records, search.client.cache, search.sandbox_memo)
    if not observer.verifiable:
        return None
    obs = observer.observe([shape.generator])
    judged = obs.seen[:, 0]
    n, y = obs.n[judged], obs.y[judged]
    tp, fp = int(obs.tp[judged, 0].sum()), int(obs.fp[judged, 0].sum())
    return VerifierRates(int(n.sum()), tp, fp, int((n - y).sum()) - fp, int(y.sum()) - tp)


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
                                 created=dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
                                 task_file=os.path.relpath(search.settings.task.path.resolve(), path.resolve().parent)),
    })
    save_spec(frozen, path)
    return frozen


def write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
