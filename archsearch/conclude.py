"""After the search: what the posterior says, which pipeline to export, and how it did on the final
split -- everything `archsearch optimize` reports, computed here and printed by report.py."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import BudgetExhausted
from .search import Search, measured_from_attrs
from .selection import Choice, Option, cheapest, choose, posterior_options
from .space import enumerate_space, spec_fingerprint
from .spec import Measured
from .thresholdout import Thresholdout


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


def _evidence(search: Search):
    """The sampler's evidence, or a fresh fit over the whole space; (None, kinds) when not modelled."""
    from .bayes.evidence import Evidence
    from .bayes.plan import plan_of, uncovered

    sampler = search.sampler
    specs = [spec for _, spec in enumerate_space(search.settings.space, search.settings.task)]
    missing = sorted({k for s in specs for k in uncovered(s)})
    if sampler is not None and getattr(sampler, "evidence", None) is not None:
        # NUTS while the data are small, for the report
        return (sampler.evidence if sampler.evidence.refresh(method="auto") is not None else None), missing
    plans = [p for p in (plan_of(s) for s in specs) if p is not None]
    if not plans or search.client.cache is None:
        return None, missing
    evidence = Evidence(search.settings.task, search.records, search.client.cache, search.sandbox_memo, plans)
    return (evidence if evidence.refresh(method="auto") is not None else None), missing


def conclude(search: Search, fp_cost: float = 1.0, seed: int = 0) -> Conclusion | None:
    from .bayes.summary import Band, believe, ceiling, verifier_table

    rng = np.random.default_rng(seed)
    s, objective = search.settings, search.settings.objective
    front = [t for t in search.front() if objective.feasible(measured_from_attrs(t.user_attrs, "search"))]
    if not front:
        return None
    specs = [spec for _, spec in enumerate_space(s.space, s.task)]
    base_spec = specs[cheapest(specs)]
    options = [Option(t.number, t.user_attrs["fingerprint"], search.spec_of(t), measured_from_attrs(t.user_attrs, "search"))
               for t in front]
    known = {t.user_attrs.get("fingerprint"): t for t in search.study.get_trials(deepcopy=False) if t.values}
    fp = spec_fingerprint(base_spec)
    baseline = next((o for o in options if o.fingerprint == fp), None)
    if baseline is None:
        t = known.get(fp)
        baseline = Option(t.number if t else None, fp, base_spec, measured_from_attrs(t.user_attrs, "search") if t else None)
    ordered = [o for o in options if o is not baseline] + [baseline]
    failure = ""
    try:
        evidence, missing = _evidence(search)
        posterior = posterior_options(evidence, ordered, objective, rng)
    except Exception as exc:  # noqa: BLE001 - a finished search still reports and exports, on raw scores
        evidence, missing, posterior = None, [], False
        failure = f"the surrogate could not be fitted ({type(exc).__name__}: {str(exc)[:200]}); chosen on raw scores"
    if not posterior and baseline.search is None:
        ordered = ordered[:-1]
    holdout, rescore = None, None
    if posterior and any(r.split == "select" for r in s.task.records):
        holdout = Thresholdout.from_state(search.study.user_attrs.get("thresholdout"), seed=s.seed)
        select = s.task.split("select")

        def rescore(option: Option) -> float:
            return search.evaluate(option.spec, select, "select").measured().accuracy

        def compare(option: Option, base: Option) -> list[float]:
            mine, theirs = ({o.id: float(o.correct) for o in search.evaluate(x.spec, select, "select").scored}
                            for x in (option, base))
            return [mine[q] - theirs[q] for q in mine if q in theirs]

    try:
        choice = choose([o for o in ordered if o.search is not None or o is baseline], baseline, objective, posterior,
                        rescore, holdout, objective.select.min_p_beats_baseline, objective.select.rescore_top,
                        compare if rescore else None)
    except BudgetExhausted as exc:
        choice = choose(ordered, baseline, objective, posterior, None, None)
        choice.reason += f" (the select split was not used: {exc})"
    if holdout is not None:
        search.study.set_user_attr("thresholdout", holdout.state())
    out = Conclusion(choice, evidence, missing, final_split=s.task.final_split)
    if failure:
        out.notes.append(failure)
    if evidence is not None:
        from .bayes.plan import plan_of

        front_specs = [o.spec for o in options]
        bands = believe(evidence, front_specs, rng) or []
        out.beliefs = {o.trial: b for o, b in zip(options, bands)}
        out.verifiers = verifier_table(evidence)
        out.ceiling = ceiling(evidence, choice.chosen.spec, fp_cost)
        out.advice = resample_until_accepted(choice.chosen.spec, out.ceiling)
        if out.advice is not None and plan_of(out.advice) is not None:
            out.advice_predicted = evidence.on_new([plan_of(out.advice)], 512, rng)
        final_n = len(s.task.split(out.final_split))
        if plan_of(choice.chosen.spec) is not None:
            predicted = evidence.on_new([plan_of(choice.chosen.spec)], final_n, rng)
            out.predicted_final = Band.of(predicted.accuracy[:, 0])
    records = s.task.split(out.final_split)
    try:
        out.final = search.evaluate(choice.chosen.spec, records, out.final_split).measured()
        if baseline is not choice.chosen:
            out.baseline_final = search.evaluate(baseline.spec, records, out.final_split).measured()
    except BudgetExhausted as exc:
        out.notes.append(f"the {out.final_split} split was not evaluated: {exc}")
    _notes(out)
    return out


def resample_until_accepted(spec, ceiling) -> object | None:
    """The ceiling's advice as a pipeline: the chosen pipeline's last generator (the one that samples;
    a greedy lead is left out, as in the ceiling's closed form), up to best_k samples,
    stopping at the first its verifier accepts, abstaining when none is (a wrong answer costs fp_cost)."""
    from .spec import parse_spec

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
    final, p = out.final, out.predicted_final
    if final is None:
        return
    if p is not None and not (p.low <= final.accuracy <= p.high):
        side = "below" if final.accuracy < p.low else "above"
        out.notes.append(f"the measured {out.final_split} accuracy {final.accuracy:.3f} is {side} the predicted 90% "
                         f"interval [{p.low:.3f}, {p.high:.3f}]")
    base = out.baseline_final if out.baseline_final is not None else (final if out.choice.chosen is out.choice.baseline
                                                                        else None)
    if base is not None and out.choice.chosen is not out.choice.baseline and final.accuracy < base.accuracy:
        out.notes.append(f"the chosen pipeline scored {final.accuracy:.3f} on the {out.final_split} split, BELOW the "
                         f"baseline's {base.accuracy:.3f}")
