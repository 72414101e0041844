"""What the posterior says about a search's result: honest accuracy intervals for the front (no
winner's curse), each verifier's error rates, and the resampling ceiling they imply."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..spec import PipelineSpec
from .evidence import Evidence
from .plan import plan_of, written_tests


@dataclass
class Band:
    mean: float
    low: float      # 5th percentile
    high: float     # 95th percentile

    @classmethod
    def of(cls, x: np.ndarray) -> Band:
        return cls(float(np.mean(x)), float(np.percentile(x, 5)), float(np.percentile(x, 95)))

    def __str__(self) -> str:
        return f"{self.mean:.3f} [{self.low:.3f}, {self.high:.3f}]"


@dataclass
class VerifierRow:
    """One verifier (the visible tests, or an LLM judge) judging one generator's samples."""

    verifier: str
    generator: str
    judged: int               # samples it judged
    tpr: Band
    fpr: Band


@dataclass
class Ceiling:
    verifier: str
    ceiling: Band             # accuracy of resampling until the verifier accepts, k -> infinity
    best_k: int               # samples that maximise P(correct) - fp_cost * P(accepted wrong)
    fp_cost: float


def believe(evidence: Evidence, specs: list[PipelineSpec], rng: np.random.Generator) -> list[Band | None] | None:
    """Posterior predictive accuracy of each spec on the search questions (replaying what is known);
    None for a spec the surrogate does not model."""
    if evidence.posterior is None:
        return None
    plans = [plan_of(s) for s in specs]
    covered = [i for i, p in enumerate(plans) if p is not None]
    sim = evidence.on_search([plans[i] for i in covered], rng) if covered else None
    out: list[Band | None] = [None] * len(specs)
    for k, i in enumerate(covered):
        out[i] = Band.of(sim.accuracy[:, k])
    return out


def verifier_table(evidence: Evidence) -> list[VerifierRow]:
    """TPR and FPR with 90% intervals, one row per (verifier, generator) that was judged."""
    post, arrays = evidence.posterior, evidence.arrays
    J = arrays.verdict.shape[0]
    rows = []
    for v, name in enumerate(evidence.verifier_names):
        for g, key in enumerate(evidence.objects.generators):
            m = arrays.m[g]
            if v < evidence.visible:
                n = int(m[arrays.testable].sum())
            elif v >= evidence.visible + J:   # model-written tests: the samples of the questions whose tests are known
                n = int(m[arrays.written.known[(v - evidence.visible - J) % arrays.written.writers]].sum())
            else:
                judged = [arrays.verdict[v - evidence.visible, q, arrays.sample[g, q, :m[q]]] for q in range(len(m))]
                n = int(sum((x >= 0).sum() for x in judged))
            if n == 0:
                continue
            rows.append(VerifierRow(name, _label(evidence.observer.layers[key]), n, Band.of(post.tpr()[:, v, g]),
                                    Band.of(post.fpr(g)[:, v])))
    return rows


def _label(gen) -> str:
    p = gen.params
    label = f"{gen.model.id} T={p.temperature:g}"
    if p.instruction:
        label += f" '{p.instruction[:24]}...'" if len(p.instruction) > 24 else f" '{p.instruction}'"
    return label + (f" {len(p.demos)} demos" if p.demos else "")


def ceiling(evidence: Evidence, spec: PipelineSpec, fp_cost: float, k_max: int = 64) -> Ceiling | None:
    """For the spec's last generator (the one that samples) and its verifier (its first check, else the visible tests):
    resampling until accepted tops out at the verifier's precision (Inference Scaling fLaws)."""
    plan = plan_of(spec)
    post = evidence.posterior
    if plan is None or post is None or post.tau.shape[1] == 0 or not plan.generators():
        return None
    last = max(i for i, layer in enumerate(plan.layers) if layer.kind == "generate")
    g = evidence.ctx.generators[plan.layers[last].key]
    check = next((layer for layer in plan.layers[last + 1:] if layer.kind in ("verify", "test")), None)
    if check is not None and check.kind == "verify":
        v = evidence.visible + evidence.ctx.judges["verify"][check.key]
    elif check is not None and written_tests(check):   # a generator that stops early judges one sample at a time
        v = evidence.ctx.writer_row(evidence.ctx.judges["test"][check.key], alone=plan.layers[last].params.stop != "never")
    elif evidence.visible:
        v = 0
    else:
        return None
    skill = post.theta[:, g][:, None] - post.b                                   # [D, Q]
    p = post.cell_p(np.random.default_rng(0))[:, g]
    c = 1 / (1 + np.exp(-post.tau[:, v, g]))[:, None]
    f = 1 / (1 + np.exp(-(post.gamma[:, v, g][:, None] - post.lam[:, v][:, None] * skill)))
    a = c * p + f * (1 - p)
    ks = np.arange(1, k_max + 1)[:, None, None]
    accepted = 1 - (1 - a[None]) ** ks
    correct = c * p / a * accepted
    utility = (correct - fp_cost * (accepted - correct)).mean(axis=(1, 2))
    return Ceiling(evidence.verifier_names[v], Band.of((c * p / a).mean(axis=1)), int(ks[np.argmax(utility), 0, 0]), fp_cost)
