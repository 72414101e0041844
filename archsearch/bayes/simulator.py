"""Run every pipeline of a list on posterior draws (replay.py, fusion.py) and summarise what each
scores and spends on the questions: the surrogate's one predictive, for the sampler, the report,
the selection and the benchmarks."""

from __future__ import annotations

import numpy as np

from .fusion import simulate_fusion
from .plan import Plan
from .replay import Common, Context, Simulated, simulate_sampling


def simulate(posterior, plans: list[Plan], ctx: Context, cost_model, rng: np.random.Generator,
             draws: np.ndarray | None = None, budget: int = 3_000_000) -> Simulated:
    """``budget`` bounds the elements of one vectorised block (draws x pipelines x questions x slots)."""
    d_all = np.arange(posterior.draws) if draws is None else np.asarray(draws)
    costs = cost_model.draw(rng, posterior.draws)
    P, Q, D = len(plans), ctx.known.questions, len(d_all)
    per_q = {k: np.zeros((D, P, Q)) for k in ("correct", "calls", "tokens", "usd", "latency")}
    determined = np.zeros(P, bool)
    sampling = [i for i, p in enumerate(plans) if p.family == "sampling"]
    slots = max([plans[i].slots for i in sampling], default=1)
    for start_d in range(0, D, max(1, min(D, budget // max(1, Q * slots * 8)))):
        d = d_all[start_d:start_d + max(1, min(D, budget // max(1, Q * slots * 8)))]
        rows = slice(start_d, start_d + len(d))
        common = Common.draw(posterior, ctx.known, rng, d, ctx.known.verdict.shape[0], max(p.slots for p in plans))
        width = max(1, budget // max(1, len(d) * Q * slots * slots))
        for start in range(0, len(sampling), width):
            chunk = sampling[start:start + width]
            out = simulate_sampling(posterior, [plans[i] for i in chunk], ctx, costs, rng, d, common)
            for k in per_q:
                per_q[k][rows, chunk] = out[k]
            determined[chunk] = out["determined"]
        for i, plan in enumerate(plans):
            if plan.family == "fusion":
                out = simulate_fusion(posterior, plan, ctx, costs, rng, d, common)
                for k in per_q:
                    per_q[k][rows, i] = out[k]
                determined[i] = bool(out["determined"])
    latency = per_q["latency"]
    return Simulated(accuracy=per_q["correct"].mean(axis=2), calls=per_q["calls"].mean(axis=2),
                     tokens=per_q["tokens"].mean(axis=2), usd=per_q["usd"].mean(axis=2),
                     latency_p50=np.percentile(latency, 50, axis=2), latency_p95=np.percentile(latency, 95, axis=2),
                     determined=determined)
