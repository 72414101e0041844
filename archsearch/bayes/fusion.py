"""Replay of the fusion family (generate n -> [rank, keep k] -> [critique] -> fuse, or -> rank keep 1),
one pipeline at a time, vectorised over draws x questions. Known rank orders and fused answers are
replayed; unknown ones are drawn: a ranker orders by Plackett-Luce (Gumbel-max) with utility
beta * right + alpha * [listed first]; a fuser is right with probability
sigmoid(a + b logit((m + 1/2) / (k + 1)) - d b_q + e critiqued) for m right of k inputs."""

from __future__ import annotations

import numpy as np

from ..llm.models import ModelSpec
from .model import fuse_share
from .observe import fusion_inputs_key
from .plan import Plan
from .replay import Common, Context, sigmoid, usd_of


def simulate_fusion(posterior, plan: Plan, ctx: Context, costs, rng: np.random.Generator, d: np.ndarray,
                    common: Common) -> dict[str, np.ndarray]:
    """Per-question outcomes [D, Q] of one fusion plan for draws ``d``."""
    ka, Q, D = ctx.known, ctx.known.questions, len(d)
    gen, n = plan.sources[0]
    g = ctx.gen(gen.key)
    M = ka.correct.shape[2]
    idx = np.minimum(np.arange(n), M - 1)
    known = (np.arange(n)[None, :] < ka.m[g][:, None])                                 # [Q, n]
    all_known = known.all(axis=1)                                                        # [Q]
    correct = np.where(known, ka.correct[g][:, idx], common.correct[:, g, :, :n] < common.p[:, g, :, None])
    gen_cost = np.where(known[None, None], ka.gen_cost[:, g][:, :, idx][:, None],
                        costs.sample(gen.model.id, "generate", 1, (D, Q, n), rows=d))
    calls = np.full((D, Q), float(n))
    tokens = (gen_cost[0] + gen_cost[1]).sum(axis=-1)
    usd = usd_of(gen.model, costs, gen_cost[0], gen_cost[1]).sum(axis=-1)
    latency = gen_cost[2].max(axis=-1)
    order = np.broadcast_to(np.arange(n), (D, Q, n))
    determined = all_known.copy()
    if plan.rank is not None:
        r = ctx.judge("rank", plan.rank.key)
        beta, alpha = posterior.rank_beta[d][:, r], posterior.rank_alpha[d][:, r]
        util = beta[:, None, None] * correct + alpha[:, None, None] * (np.arange(n) == 0) + rng.gumbel(size=(D, Q, n))
        drawn_order = np.argsort(-util, axis=-1, kind="stable")
        known_order = np.zeros((Q, n), int)
        have = np.zeros(Q, bool)
        for q in range(Q):
            hit = ctx.ranks.get((r, g, n, q))
            if hit is not None and all_known[q]:
                known_order[q], have[q] = hit[0], True
        order = np.where(have[None, :, None], known_order[None], drawn_order)
        recorded = [ctx.ranks[(r, g, n, q)][1] if have[q] else None for q in range(Q)]
        cost = _call_costs(costs, plan.rank.model, "rank", n, recorded, have, d)
        calls, tokens, usd, latency = _add(calls, tokens, usd, latency, cost, plan.rank.model, costs)
        determined &= have
    k = plan.keep if plan.rank is not None else n
    inputs = order[..., :k]                                                              # [D, Q, k]
    right = np.take_along_axis(correct, inputs, axis=-1)
    if plan.fuse is None:   # rank keep 1: the ranker's choice is the answer
        return _result(right[..., 0].astype(float), calls, tokens, usd, latency, determined)
    if plan.critique is not None:
        c = ctx.judge("critique", plan.critique.key)
        rows = [[ctx.critiques.get((c, g, q, int(i))) for i in range(n)] for q in range(Q)]
        have = np.array([[row[i] is not None for i in range(n)] for row in rows])          # [Q, n]
        per = np.zeros((3, D, Q, n))
        drawn_c = costs.sample(plan.critique.model.id, "critique", 1, (D, Q, n), rows=d)
        for q in range(Q):
            for i in range(n):
                call = rows[q][i]
                per[:, :, q, i] = (np.array([call.tokens_in, call.tokens_out, call.latency_s])[:, None]
                                   if call is not None else drawn_c[:, :, q, i])
        chosen = np.take_along_axis(per, np.broadcast_to(inputs[None], (3, D, Q, k)), axis=-1)
        calls = calls + k
        tokens = tokens + (chosen[0] + chosen[1]).sum(axis=-1)
        usd = usd + usd_of(plan.critique.model, costs, chosen[0], chosen[1]).sum(axis=-1)
        latency = latency + chosen[2].max(axis=-1)
        determined &= have.all(axis=1)
    f = ctx.judge("fuse", plan.fuse.key)
    key = fusion_inputs_key(plan)
    hits = [ctx.fused.get((f, key, q)) for q in range(Q)]
    have = np.array([h is not None for h in hits])
    known_right = np.array([float(h[0]) if h else 0.0 for h in hits])
    m = right.sum(axis=-1)
    logit = (posterior.fuse["a"][d][:, f, None] + posterior.fuse["b"][d][:, f, None] * np.asarray(fuse_share(m, k))
             - posterior.fuse["d"][d][:, f, None] * posterior.b[d] + posterior.fuse["e"][d][:, f, None] * (plan.critique is not None))
    fused = np.where(have[None], known_right[None], rng.random((D, Q)) < sigmoid(logit))
    cost = _call_costs(costs, plan.fuse.model, "fuse", k, [h[2] if h else None for h in hits], have, d)
    calls, tokens, usd, latency = _add(calls, tokens, usd, latency, cost, plan.fuse.model, costs)
    return _result(fused.astype(float), calls, tokens, usd, latency, determined & have)


def _call_costs(costs, model: ModelSpec, role: str, inputs: int, recorded: list, have: np.ndarray, d):
    """[3, D, Q] tokens in, out and latency of one call per question: the recorded call where known."""
    Q = len(recorded)
    drawn = costs.sample(model.id, role, inputs, (len(d), Q), rows=d)
    known = np.array([[c.tokens_in, c.tokens_out, c.latency_s] if c is not None else [0.0, 0.0, 0.0]
                      for c in recorded], float).T.reshape(3, 1, Q)
    return np.where(have[None, None], known, drawn)


def _add(calls, tokens, usd, latency, cost, model: ModelSpec, costs):
    return (calls + 1, tokens + cost[0] + cost[1], usd + usd_of(model, costs, cost[0], cost[1]), latency + cost[2])


def _result(correct, calls, tokens, usd, latency, determined) -> dict[str, np.ndarray]:
    return {"correct": correct, "calls": calls, "tokens": tokens, "usd": usd, "latency": latency,
            "determined": np.array(bool(np.all(determined)))}
