"""After the search: what the posterior says, which pipeline to export, and how it did on the final
split -- everything `archsearch optimize` reports, computed here and printed by report.py.

1. ``options``: the feasible front, and the baseline (the space's cheapest pipeline).
2. ``evidence``: the surrogate fitted to what the cache holds (NUTS while the data are small).
3. ``decide`` (decide.py): the posterior of each option, the select split's paired answers, the choice.
4. ``explain``: the posterior's report -- beliefs on the search split, the verifiers, the resampling
   ceiling and its advice, the predicted final-split score.
5. ``final``: the chosen pipeline and the baseline scored once on the final split.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ..errors import BudgetExhausted
from ..space import spec_fingerprint
from ..spec import Measured
from ..thresholdout import Thresholdout
from . import records
from .decide import Choice, Option, SelectSplit, decide
from .records import TrialRecord

if TYPE_CHECKING:   # the search imports optuna; redrawing a report needs none of it
    from .search import Search


@dataclass
class Conclusion:
    choice: Choice
    evidence: object | None = None           # bayes.evidence.Evidence, when the space is modelled
    uncovered: list[str] = field(default_factory=list)
    beliefs: dict[int, object] = field(default_factory=dict)    # trial -> Band on the search split
    verifiers: list = field(default_factory=list)               # bayes.summary.VerifierRow
    ceiling: object | None = None
    advice: object | None = None                                # the ceiling's best k, as a pipeline spec
    advice_predicted: object | None = None                      # its Simulated on new questions
    advice_path: object | None = None                           # where the CLI wrote it
    final_split: str = "test"
    predicted_final: object | None = None                       # Band of the chosen pipeline's final score
    final: Measured | None = None
    baseline_final: Measured | None = None
    notes: list[str] = field(default_factory=list)


def options(search: Search) -> tuple[list[Option], Option] | None:
    """The feasible front as options, and the baseline (run or not); None when nothing is feasible."""
    s, objective = search.settings, search.settings.objective
    front = [TrialRecord.of(t) for t in search.front()]
    front = [r for r in front if objective.feasible(r.search)]
    if not front:
        return None
    opts = [Option(r.number, r.fingerprint, r.spec(s.study_name), r.search) for r in front]
    _, base_spec = s.space.baseline(s.task)
    fp = spec_fingerprint(base_spec)
    baseline = next((o for o in opts if o.fingerprint == fp), None)
    if baseline is None:
        ran = next((r for r in search.trial_records() if r.fingerprint == fp and r.values), None)
        baseline = Option(ran.number if ran else None, fp, base_spec, ran.search if ran else None)
    return opts, baseline


def evidence(search: Search, fit: str = "auto"):
    """(the evidence, the layer kinds it cannot model): the sampler's, or a fresh fit over the space.
    ``fit``: "auto" (NUTS while the data are small, else SVI), "nuts" or "svi"."""
    from ..bayes.evidence import Evidence
    from ..bayes.non_call import NonCallTimes
    from ..bayes.plan import plan_of, uncovered

    specs = [spec for _, spec in search.settings.space.pipelines(search.settings.task)]
    missing = sorted({k for s in specs for k in uncovered(s)})
    fitted = getattr(search.sampler, "evidence", None)
    if fitted is None:
        plans = [p for p in (plan_of(s) for s in specs) if p is not None]
        if not plans or search.client.cache is None:
            return None, missing
        fitted = Evidence(search.settings.task, search.records, search.client.cache, search.sandbox_memo, plans)
    fitted.non_call = NonCallTimes.of(r.non_call for r in search.trial_records())
    return (fitted if fitted.refresh(method=fit) is not None else None), missing


def select_split(search: Search) -> SelectSplit | None:
    """The select split as decide() asks it: paired differences with the baseline, through the
    study's Thresholdout (its state kept in the study between runs)."""
    s = search.settings
    if not any(r.split == "select" for r in s.task.records):
        return None
    rows = s.task.split("select")

    def correct(option: Option) -> dict[str, float]:
        return {o.id: float(o.correct) for o in search.evaluate(option.spec, rows, "select").scored}

    def compare(option: Option, base: Option) -> list[float]:
        mine, theirs = correct(option), correct(base)
        return [mine[q] - theirs[q] for q in mine if q in theirs]

    holdout = Thresholdout.from_state(search.study.user_attrs.get(records.THRESHOLDOUT), seed=s.seed)
    return SelectSplit(holdout, compare, lambda o: search.evaluate(o.spec, rows, "select").measured().accuracy)


def conclude(search: Search, fp_cost: float = 1.0, seed: int = 0, fit: str = "auto") -> Conclusion | None:
    rng = np.random.default_rng(seed)
    found = options(search)
    if found is None:
        return None
    opts, baseline = found
    failure = ""
    try:
        fitted, missing = evidence(search, fit)
    except Exception as exc:  # noqa: BLE001 - a finished search still reports and exports, on raw scores
        fitted, missing = None, []
        failure = f"the surrogate could not be fitted ({type(exc).__name__}: {str(exc)[:200]}); chosen on raw scores"
    select = select_split(search) if fitted is not None else None
    try:
        choice = decide(fitted, opts, baseline, search.settings.objective, select, rng)
    except Exception as exc:  # noqa: BLE001 - as above: the posterior failed, the raw scores decide
        fitted, select = None, None
        failure = f"the surrogate's predictions failed ({type(exc).__name__}: {str(exc)[:200]}); chosen on raw scores"
        choice = decide(None, opts, baseline, search.settings.objective, None, rng)
    if select is not None:
        search.study.set_user_attr(records.THRESHOLDOUT, select.holdout.state())
    out = Conclusion(choice, fitted, missing, final_split=search.settings.task.final_split)
    if failure:
        out.notes.append(failure)
    if fitted is not None:
        explain(out, opts, fp_cost, len(search.settings.task.split(out.final_split)), rng)
    final(search, out)
    _notes(out)
    return out


def explain(out: Conclusion, front: list[Option], fp_cost: float, final_questions: int, rng) -> None:
    """The posterior's part of the report."""
    from ..bayes.plan import plan_of
    from ..bayes.summary import Band, believe, ceiling, verifier_table

    bands = believe(out.evidence, [o.spec for o in front], rng) or []
    out.beliefs = {o.trial: b for o, b in zip(front, bands) if b is not None}
    out.verifiers = verifier_table(out.evidence)
    chosen = out.choice.chosen.spec
    out.ceiling = ceiling(out.evidence, chosen, fp_cost)
    out.advice = resample_until_accepted(chosen, out.ceiling)
    if out.advice is not None and plan_of(out.advice) is not None:
        out.advice_predicted = out.evidence.on_new([plan_of(out.advice)], 512, rng, population=True)
    if plan_of(chosen) is not None:
        out.predicted_final = Band.of(out.evidence.on_split(plan_of(chosen), final_questions, rng))


def final(search: Search, out: Conclusion) -> None:
    """The final split, touched once: the chosen pipeline, and the baseline for comparison."""
    rows = search.settings.task.split(out.final_split)
    try:
        out.final = search.evaluate(out.choice.chosen.spec, rows, out.final_split).measured()
        if out.choice.baseline is not out.choice.chosen:
            out.baseline_final = search.evaluate(out.choice.baseline.spec, rows, out.final_split).measured()
    except BudgetExhausted as exc:
        out.notes.append(f"the {out.final_split} split was not evaluated: {exc}")


def resample_until_accepted(spec, ceiling) -> object | None:
    """The ceiling's advice as a pipeline: the chosen pipeline's last generator (the one that samples;
    a greedy lead is left out, as in the ceiling's closed form), up to best_k samples,
    stopping at the first its verifier accepts, abstaining when none is (a wrong answer costs fp_cost)."""
    from ..spec import parse_spec

    if ceiling is None or ceiling.best_k < 1:
        return None
    layers = [layer.model_dump() for layer in spec.layers]
    gen = next((x for x in reversed(layers) if x["kind"] == "generate"), None)
    check = next((x for x in layers if x["kind"] in ("verify", "test")), None)
    if gen is None or check is None:
        return None
    gen = {"kind": "generate", "params": {**gen["params"], "n": ceiling.best_k, "stop": "accepted"}}
    params = {**check["params"], "on_none_passed": "abstain"}
    if check["kind"] == "test":
        params["keep"] = "passing"
    body = spec.model_dump(mode="json", exclude={"metrics", "provenance"})
    body.update(name=f"{spec.name}-until-accepted-{ceiling.best_k}", layers=[gen, {"kind": check["kind"], "params": params}],
                description=f"Resample up to {ceiling.best_k} times until {ceiling.verifier} accepts, abstain otherwise: "
                            f"the best number of samples when a false positive costs {ceiling.fp_cost:g} right answers.")
    return parse_spec(body, "the resampling advice")


def _notes(out: Conclusion) -> None:
    """Say plainly what happened on the final split."""
    final_, p = out.final, out.predicted_final
    if final_ is None:
        return
    if p is not None and not (p.low <= final_.accuracy <= p.high):
        side = "below" if final_.accuracy < p.low else "above"
        out.notes.append(f"the measured {out.final_split} accuracy {final_.accuracy:.3f} is {side} the predicted 90% "
                         f"interval [{p.low:.3f}, {p.high:.3f}]")
    base = out.baseline_final if out.baseline_final is not None else (final_ if out.choice.chosen is out.choice.baseline
                                                                         else None)
    if base is not None and out.choice.chosen is not out.choice.baseline and final_.accuracy < base.accuracy:
        out.notes.append(f"the chosen pipeline scored {final_.accuracy:.3f} on the {out.final_split} split, BELOW the "
                         f"baseline's {base.accuracy:.3f}")
