"""What a search tells the user: the Pareto front with the posterior beside the raw scores and the
chance of beating the baseline, each verifier's error rates, the chosen pipeline's final-split
score against its prediction -- as tables, a plot, report.json and the frozen spec."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from rich.table import Table

from .. import __version__
from ..bayes.plan import uncovered
from ..pipeline import build_techniques
from ..spec import PipelineSpec, Provenance, save_spec
from .conclude import Conclusion
from .html import COST_LABELS
from .records import TrialRecord

if TYPE_CHECKING:   # the search imports optuna; redrawing a report needs none of it
    from .search import Search


def describe(spec: PipelineSpec) -> str:
    """The pipeline in one line: each layer as its technique describes itself."""
    return " -> ".join(t.describe() for t in build_techniques(spec))


def front_table(search: Search, conclusion: Conclusion | None) -> Table:
    options = {o.trial: o for o in conclusion.choice.options} if conclusion else {}
    chosen = conclusion.choice.chosen.trial if conclusion else None
    baseline = conclusion.choice.baseline.trial if conclusion else None
    table = Table(title="Pareto front (search split; the posterior is for new questions)")
    for col in ("trial", "pipeline", "search accuracy [95% CI]", "posterior [90%]", "P(beats baseline)", "after select",
                "$/question", "latency p50", "calls/q", "scored"):
        table.add_column(col)
    for t in search.front():
        record = TrialRecord.of(t)
        m = record.search
        o = options.get(t.number)
        mark = " *" if t.number == chosen else (" (baseline)" if t.number == baseline else "")
        post = "" if o is None or o.accuracy is None else "{:.3f} [{:.3f}, {:.3f}]".format(*o.band())
        if o is not None and o.accuracy is None and conclusion.evidence is not None:
            post = "not modelled (" + ", ".join(uncovered(o.spec)) + ")"
        beats = "baseline" if t.number == baseline else ("" if o is None or o.p_beats is None else f"{o.p_beats:.2f}")
        if o is not None and o.p_beats_select is not None:
            beats += f" -> {o.p_beats_select:.2f} with select"
        select = "" if o is None or o.select is None else f"{o.select['value']:.3f}" + (" (revealed)" if o.select["revealed"] else "")
        scored = f"{m.questions}/{m.questions + record.unscored}"
        table.add_row(f"{t.number}{mark}", describe(search.spec_of(t)), f"{m.accuracy:.3f} [{m.accuracy_low:.2f}, {m.accuracy_high:.2f}]",
                      post, beats, select, f"{m.usd_per_question:.5f}", f"{m.latency_p50_s:.1f}s", f"{m.calls_per_question:.1f}",
                      scored)
    return table


def verifier_table(conclusion: Conclusion) -> Table | None:
    if not conclusion.verifiers:
        return None
    table = Table(title="Verifiers: true- and false-positive rates (posterior mean [90%])")
    for col in ("verifier", "judging", "samples judged", "TPR", "FPR"):
        table.add_column(col)
    for row in conclusion.verifiers:
        table.add_row(row.verifier, row.generator, str(row.judged), str(row.tpr), str(row.fpr))
    return table


def print_conclusion(console, conclusion: Conclusion) -> None:
    """The posterior's part of the report: the surrogate, the verifiers, the resampling advice, the
    choice and its final-split score against the prediction, and plain notes."""
    c = conclusion
    if c.evidence is None:
        console.print(f"surrogate: no pipeline of this space can be modelled (layers: {', '.join(c.uncovered) or 'none'}); "
                      "no posterior, chosen on raw search scores")
    else:
        if c.uncovered:
            console.print(f"surrogate: pipelines with {', '.join(c.uncovered)} layers are not modelled (TPE proposed "
                          "them; no posterior for them, so they are not chosen over modelled ones)")
        post = c.evidence.posterior
        console.print(f"surrogate: NumPyro {post.method}, {post.seconds:.1f}s" + (f"; {'; '.join(post.warnings)}" if post.warnings else "")
                      + _modes_note(post.diagnostics or {}))
        table = verifier_table(c)
        if table is not None:
            console.print(table)
        if c.ceiling is not None:
            k = c.ceiling
            console.print(f"resampling until {k.verifier} accepts tops out at {k.ceiling}; with a false positive costing "
                          f"{k.fp_cost:g}x a right answer, the best number of samples is {k.best_k}")
        if c.advice is not None and c.advice_predicted is not None:
            sim = c.advice_predicted
            console.print(f"that pipeline, {describe(c.advice)}: predicted accuracy {sim.accuracy.mean():.3f} on new "
                          f"questions at {sim.calls.mean():.1f} calls per question; written to {c.advice_path}")
    chosen = c.choice.chosen
    console.print(f"chosen: trial {chosen.trial} — {describe(chosen.spec)} — {c.choice.reason}")
    if c.final is not None:
        predicted = f" (predicted {c.predicted_final})" if c.predicted_final is not None else ""
        base = f"; baseline {c.baseline_final.accuracy:.3f}" if c.baseline_final is not None else ""
        console.print(f"{c.final_split} split: {c.final.accuracy:.3f} [{c.final.accuracy_low:.2f}, "
                      f"{c.final.accuracy_high:.2f}] on {c.final.questions} questions{predicted}{base}")
    for note in c.notes:
        console.print(f"[bold yellow]note:[/] {note}")


def cost_metric(objective) -> str:
    """The metric the objective pays in: its first minimised cost (dollars, calls or latency), else
    calls per question. The front's x-axis, in the PNG and the HTML report alike."""
    return next((m.name for m in objective.metrics if m.direction == "minimize" and m.name in COST_LABELS),
                "calls_per_question")


def points(search: Search) -> list[dict]:
    """Every finished trial as a point: accuracy with its interval, every cost metric, on the front or not."""
    from optuna.trial import TrialState

    front = {t.number for t in search.front()}
    out = []
    for t in search.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        r = TrialRecord.of(t)
        if r.search is None:
            continue
        m = r.search
        out.append({"trial": t.number, "pipeline": describe(r.spec(search.settings.study_name)) if r.spec_text else "",
                    "front": t.number in front, "accuracy": m.accuracy, "low": m.accuracy_low, "high": m.accuracy_high,
                    **{name: getattr(m, name) for name in COST_LABELS}})
    return out


def plot_front(trials: list[dict], cost: str, title: str, path: Path) -> None:
    """The PNG of the front: accuracy against the objective's cost metric, the front in blue."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels: dict[tuple[float, float], list[str]] = {}
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for p in sorted(trials, key=lambda p: p["front"]):
        on = p["front"]
        yerr = [[max(0.0, p["accuracy"] - p["low"])], [max(0.0, p["high"] - p["accuracy"])]]
        ax.errorbar(p[cost], p["accuracy"], yerr=yerr,
                    fmt="o", color="C0" if on else "0.75", ecolor="C0" if on else "0.85", capsize=3, zorder=3 if on else 1)
        if on:
            labels.setdefault((p[cost], p["accuracy"]), []).append(str(p["trial"]))
    for (x, y), names in labels.items():
        ax.annotate("trial " + ",".join(names), (x, y), textcoords="offset points", xytext=(5, 4), fontsize=8)
    ax.set_xlabel(COST_LABELS[cost])
    ax.set_ylabel("accuracy on the search split (95% CI)")
    ax.set_title(f"{title}: Pareto front in blue")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def extras(conclusion: Conclusion) -> dict[str, float]:
    """The posterior's figures for the chosen pipeline, as the spec's metrics.search.extra."""
    o, out = conclusion.choice.chosen, {}
    if o.accuracy is not None:
        mean, low, high = o.band()
        out.update(posterior_accuracy=mean, posterior_accuracy_low90=low, posterior_accuracy_high90=high)
    if o.p_beats is not None:
        out["p_beats_baseline"] = o.p_beats
    if o.p_beats_select is not None:
        out["p_beats_baseline_with_select"] = o.p_beats_select
    if o.select is not None:
        out.update(select_answer=o.select["value"], select_measured=o.select.get("measured", float("nan")),
                   select_revealed=float(o.select["revealed"]))
    if conclusion.predicted_final is not None:
        p = conclusion.predicted_final
        out.update(predicted_final_accuracy=p.mean, predicted_final_low90=p.low, predicted_final_high90=p.high)
    for row in conclusion.verifiers:
        name = row.verifier.replace(" ", "_").replace("/", "_")
        out.setdefault(f"verifier_{name}_tpr", row.tpr.mean)
        out.setdefault(f"verifier_{name}_fpr", row.fpr.mean)
    if conclusion.ceiling is not None:
        c = conclusion.ceiling
        out.update(resampling_ceiling=c.ceiling.mean, resampling_ceiling_low90=c.ceiling.low,
                   resampling_ceiling_high90=c.ceiling.high, optimal_samples=float(c.best_k), fp_cost=c.fp_cost)
    return out


def export(search: Search, conclusion: Conclusion, path: Path) -> PipelineSpec:
    o = conclusion.choice.chosen
    metrics = {}
    if o.search is not None:
        metrics["search"] = o.search.model_copy(update={"extra": extras(conclusion)})
    if conclusion.final is not None:
        final = conclusion.final
        if conclusion.baseline_final is not None:
            final = final.model_copy(update={"extra": {"baseline_accuracy": conclusion.baseline_final.accuracy}})
        metrics[conclusion.final_split] = final
    frozen = o.spec.model_copy(update={
        "metrics": metrics,
        "provenance": Provenance(archsearch_version=__version__, study=search.settings.study_name, trial=o.trial,
                                 data_hash=search.settings.task.data_hash(search.records),
                                 created=dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
                                 task_file=os.path.relpath(search.settings.task.path.resolve(), path.resolve().parent)),
    })
    save_spec(frozen, path)
    return frozen


def summary(conclusion: Conclusion) -> dict:
    """The conclusion for report.json."""
    def option(o):
        out = {"trial": o.trial, "pipeline": describe(o.spec), "search": o.search.model_dump() if o.search else None,
               "p_beats_baseline": o.p_beats, "p_beats_baseline_with_select": o.p_beats_select,
               "predicted": o.predicted, "select": o.select}
        if o.accuracy is not None:
            out["posterior_new_questions"] = dict(zip(("mean", "low90", "high90"), o.band()))
        return out

    c = conclusion
    return {"choice": {"chosen": option(c.choice.chosen), "baseline": option(c.choice.baseline), "reason": c.choice.reason,
                       "by_posterior": c.choice.posterior},
            "options": [option(o) for o in c.choice.options],
            "surrogate": {"modelled": c.evidence is not None, "uncovered_layers": c.uncovered,
                          "method": getattr(getattr(c.evidence, "posterior", None), "method", None)},
            "verifiers": [{"verifier": r.verifier, "generator": r.generator, "judged": r.judged,
                           "tpr": vars(r.tpr), "fpr": vars(r.fpr)} for r in c.verifiers],
            "ceiling": None if c.ceiling is None else {"verifier": c.ceiling.verifier, **vars(c.ceiling.ceiling),
                                                       "best_k": c.ceiling.best_k, "fp_cost": c.ceiling.fp_cost},
            "final_split": c.final_split,
            "predicted_final": None if c.predicted_final is None else vars(c.predicted_final),
            "final": c.final.model_dump() if c.final else None,
            "baseline_final": c.baseline_final.model_dump() if c.baseline_final else None,
            "notes": c.notes}


def example_traces(search: Search, conclusion: Conclusion, questions: int = 3) -> dict[str, list[dict]]:
    """The first questions of the final split traced layer by layer, for the chosen pipeline and the
    baseline (their calls are in the cache once the final split ran: free)."""
    rows = search.settings.task.split(conclusion.final_split)[:questions]
    chosen, baseline = conclusion.choice.chosen, conclusion.choice.baseline
    out = {f"chosen (trial {chosen.trial})": search.trace(chosen.spec, rows)}
    if baseline is not chosen:
        out[f"baseline (trial {baseline.trial})"] = search.trace(baseline.spec, rows)
    return out


def write_report(out_dir: Path, report: dict) -> None:
    """report.json, report.html and front.png, all from the same dict."""
    from .html import render

    write_json(out_dir / "report.json", report)
    (out_dir / "report.html").write_text(render(report), encoding="utf-8")
    if report.get("trials"):
        plot_front(report["trials"], report.get("cost_metric", "calls_per_question"), str(report.get("study", "")),
                   out_dir / "front.png")


def write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")


def _modes_note(diagnostics: dict) -> str:
    """What the report says when NUTS's chains settled in separate modes (``fit._denser_chains``)."""
    chains, kept = diagnostics.get("chains", 1), diagnostics.get("chains_kept", 1)
    if kept >= chains:
        return ""
    return (f"; {chains - kept} of {chains} chains settled in a mode {diagnostics.get('modes_apart_nats', 0.0):.0f} nats "
            "less dense and were left out")
