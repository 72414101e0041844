"""Choosing the pipeline to export so that the choice holds out of sample.

1. Every feasible front pipeline gets the posterior of its accuracy on new questions (the replay
   predictor on fresh difficulties, not the raw search score that won among many noisy ones) and
   P(it beats the baseline), the baseline being the space's cheapest pipeline (greedy in the
   shipped spaces), compared draw by draw.
2. Pipelines that beat the baseline with probability >= ``min_beat`` are ranked by the objective's
   rule on posterior means; the top few are compared with the baseline question by question on the
   select split, through Thresholdout (a reusable holdout), and their posterior of the difference
   is updated with that paired difference (normal-normal: the search posterior's mean and spread of
   the difference, the select split's mean difference and standard error). The rule picks among
   those still beating the baseline with that probability, on the updated means. When no pipeline
   reaches it on the search split, the best by the rule among those more likely than not to beat the
   baseline gets the same comparison and may reach it. When none does, the baseline is chosen and
   the report says so.
3. The final split is touched once, at export, by the chosen pipeline (and the baseline, for the
   comparison the report prints -- never for choosing).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from math import erf, sqrt

import numpy as np

from ..errors import BudgetExhausted
from ..objectives import Objective
from ..spec import Measured, PipelineSpec
from ..thresholdout import Thresholdout

NEW_QUESTIONS = 1024  # stratified questions simulated per draw for a pipeline's accuracy on the task (noise ~1 point)
WORKERS = 4           # at most this many threads simulate them (the machine's cores, if fewer)


@dataclass
class Option:
    trial: int | None            # None: the baseline, when the search never ran it
    fingerprint: str
    spec: PipelineSpec
    search: Measured | None
    accuracy: np.ndarray | None = None     # [draws] posterior accuracy on new questions
    p_beats: float | None = None
    p_beats_select: float | None = None    # P(beats) updated with the select split's paired comparison
    predicted: dict[str, float] = field(default_factory=dict)   # posterior means of the objective's metrics
    select: dict | None = None             # the Thresholdout answer, when re-scored on the select split

    @property
    def mean(self) -> float:
        return float(np.mean(self.accuracy)) if self.accuracy is not None else self.search.accuracy

    def band(self) -> tuple[float, float, float]:
        if self.accuracy is None:
            return self.search.accuracy, self.search.accuracy_low, self.search.accuracy_high
        return self.mean, float(np.percentile(self.accuracy, 5)), float(np.percentile(self.accuracy, 95))


@dataclass
class Choice:
    options: list[Option]
    baseline: Option
    chosen: Option
    reason: str
    posterior: bool               # False: no model of this space, chosen on raw scores


def rank_key(objective: Objective, option: Option, value: float | None = None):
    """The objective's rule: the best ``maximize`` (or ``minimize``) metric, then the tie-break."""
    sel = objective.select
    name, sign = (sel.maximize, -1) if sel.maximize else (sel.minimize, 1)
    m = option.predicted or (option.search.model_dump() if option.search else {})
    head = value if (value is not None and name == "accuracy") else (option.mean if name == "accuracy" else m.get(name, 0.0))
    return sign * head, m.get(sel.tie_break, 0.0)


def posterior_options(evidence, options: list[Option], objective: Objective, rng: np.random.Generator) -> bool:
    """Attach each option's posterior on new questions and P(beats the baseline = options[-1])."""
    from ..bayes.plan import plan_of

    plans = [plan_of(o.spec) for o in options]
    if evidence is None or evidence.posterior is None or plans[-1] is None:
        return False
    covered = [i for i, p in enumerate(plans) if p is not None]   # a plugin layer without a step: no posterior
    sim = evidence.on_new([plans[i] for i in covered], NEW_QUESTIONS, rng, workers=min(WORKERS, os.cpu_count() or 1),
                          population=True)
    base = sim.accuracy[:, -1]
    for k, i in enumerate(covered):
        option = options[i]
        option.accuracy = sim.accuracy[:, k]
        option.p_beats = float(np.mean(sim.accuracy[:, k] > base))
        option.predicted = predicted_metrics(sim, k)
    options[-1].p_beats = None
    return True


def predicted_metrics(sim, k: int) -> dict[str, float]:
    """Pipeline ``k``'s point predictions: the posterior mean of accuracy, calls and dollars (what a
    bill adds up), the posterior median of latency -- a sitting's load makes its draws log-normal and
    wide, and their mean sits well above what a run sees (held-out pipelines: 34% median relative
    error by the median, 46% by the mean; ``benchmarks/search_benchmark.py calibration --split test``)."""
    means = {m: float(np.mean(sim.metric(m)[:, k])) for m in ("accuracy", "calls_per_question", "usd_per_question")}
    return means | {m: float(np.median(sim.metric(m)[:, k])) for m in ("latency_p50_s", "latency_p95_s")}


def update_with_select(option: Option, baseline: Option, diffs: np.ndarray, holdout: Thresholdout) -> None:
    """Sets ``option.p_beats_select`` and ``option.select``: the posterior draws of option - baseline on
    new questions as a normal prior, the select split's mean paired difference (as Thresholdout answers
    it) as a normal observation with its standard error. Paired against the baseline so that every
    option's answer is on one scale: a select split easier than the search split lifts every pipeline
    alike and favours none (comparing raw select accuracy with posterior means did)."""
    delta = option.accuracy - baseline.accuracy
    mu, var = float(delta.mean()), max(float(delta.var()), 1e-8)
    n = len(diffs)
    se2 = max(float(np.var(diffs, ddof=1)) if n > 1 else 1.0, 1.0 / max(n, 1)) / max(n, 1)
    answer = holdout.answer(f"beats:{option.fingerprint}", mu, float(np.mean(diffs)) if n else mu)
    post_var = 1 / (1 / var + 1 / se2)
    post_mu = post_var * (mu / var + answer["value"] / se2)
    option.p_beats_select = 0.5 * (1 + erf(post_mu / sqrt(2 * post_var)))
    option.select = {**answer, "gain": answer["value"], "value": float(baseline.mean + post_mu)}


@dataclass
class SelectSplit:
    """What the select split answers: the per-question differences of correctness between an option
    and the baseline (paired), revealed through the ``holdout``; ``rescore`` an option's own score
    there, shown beside the answer."""

    holdout: Thresholdout
    compare: Callable[[Option, Option], list[float]]
    rescore: Callable[[Option], float] | None = None


def decide(evidence, options: list[Option], baseline: Option, objective: Objective, select: SelectSplit | None,
           rng: np.random.Generator) -> Choice:
    """The end of a search in one function: each option's posterior on new questions and P(beats the
    baseline) from the ``evidence`` (None: no posterior, the raw search scores decide), then the
    objective's rule, with the select split's paired answers for the top few (``select``; None: no
    select split). The CLI and benchmarks/resplit.py both come here."""
    ordered = [o for o in options if o is not baseline] + [baseline]
    posterior = evidence is not None and posterior_options(evidence, ordered, objective, rng)
    if not posterior and baseline.search is None:
        ordered = ordered[:-1]
    sel = objective.select
    candidates = [o for o in ordered if o.search is not None or o is baseline]
    try:
        return choose(candidates, baseline, objective, posterior, select, sel.min_p_beats_baseline, sel.rescore_top)
    except BudgetExhausted as exc:
        choice = choose(ordered, baseline, objective, posterior, None)
        choice.reason += f" (the select split was not used: {exc})"
        return choice


def choose(options: list[Option], baseline: Option, objective: Objective, posterior: bool, select: SelectSplit | None,
           min_beat: float = 0.9, top: int = 3) -> Choice:
    """The objective's rule among ``options`` (the baseline last), as decide() explains."""
    if not posterior:   # the raw rule, among the feasible (the baseline too may break a constraint)
        scored = [o for o in options if o.search is not None]
        best = min([o for o in scored if objective.feasible(o.search)] or scored, key=lambda o: rank_key(objective, o))
        return Choice(options, baseline, best, "no posterior for this space: the best raw search score", False)
    selectable = select is not None

    def with_select(option: Option) -> Option:
        if option.p_beats_select is not None:
            return option
        update_with_select(option, baseline, np.asarray(select.compare(option, baseline), float), select.holdout)
        if select.rescore is not None:
            option.select["measured"] = select.rescore(option)
        return option

    contenders = [o for o in options if o is not baseline and (o.p_beats or 0.0) >= min_beat]
    hopefuls = sorted([o for o in options if o is not baseline and (o.p_beats or 0.0) >= 0.5],
                      key=lambda o: rank_key(objective, o))
    if not contenders and hopefuls and selectable and with_select(hopefuls[0]).p_beats_select >= min_beat:
        contenders = [hopefuls[0]]
    if not contenders:
        return Choice(options, baseline, baseline, f"no pipeline beats the baseline with probability >= {min_beat:g}: "
                                                    "the baseline, the cheapest, is chosen", True)
    contenders.sort(key=lambda o: rank_key(objective, o))
    if not selectable:
        return Choice(options, baseline, contenders[0], "the best posterior mean", True)
    shortlist = [with_select(o) for o in contenders[:top]]
    kept = [o for o in shortlist if o.p_beats_select >= min_beat]
    if not kept:
        return Choice(options, baseline, baseline, f"with the select split's paired comparison no pipeline beats the "
                                                    f"baseline with probability >= {min_beat:g}: the baseline is chosen", True)
    best = min(kept, key=lambda o: rank_key(objective, o, o.select["value"]))
    return Choice(options, baseline, best, f"the best of the top {len(shortlist)} by posterior mean after the select "
                                          f"split's paired comparison with the baseline (through Thresholdout); "
                                          f"P(beats the baseline) {best.p_beats:.2f} -> {best.p_beats_select:.2f}", True)
