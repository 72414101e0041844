"""The predictive distribution of what pipelines score and cost on a set of questions.

Per posterior draw, each pipeline is run on each question by its own rules: the calls the cache
already holds are replayed (their correctness, test results, judges' verdicts, rank orders, fused
answers, tokens and latency), and only the missing ones are drawn from the model -- a sample is
right with its cell's accuracy (a draw from Beta(mu phi + y, (1 - mu) phi + n - y)), a judge
accepts it with its TPR or FPR for that generator, a ranker orders candidates by Plackett-Luce, a
fuser is right with its fused-accuracy curve, a call's tokens and latency come from the cost model.
A pipeline whose calls are all known gets a point mass at its measured score.

The sampling family (generators -> judges/tests -> vote or first) is vectorised over draws x
pipelines x questions x candidate slots; the few fusion pipelines run one by one (fusion.py).

Votes need to know when two samples give the same answer: known samples carry their vote keys;
a drawn right sample repeats its question's canonical right answer with probability kappa (a Beta
per cell around the pool's rate: text rarely repeats, behaviour nearly always), a drawn wrong one
is new.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import comb

import numpy as np

from .known import CANONICAL, MODAL_WRONG, KnownArrays
from .plan import Plan
from .predict import ABSTAIN, FALLBACK

FRESH = 10_000   # vote-key ids of drawn samples: FRESH + slot, never equal to a known id


def _beta_lead_table(size: int = 65) -> np.ndarray:
    """P(p1 > p2) under Beta(v1 + 1, v2 + 1): the vote layer's stopping rule (techniques/vote.py)."""
    table = np.zeros((size, size))
    for v1 in range(size):
        for v2 in range(size):
            n = v1 + v2 + 1
            table[v1, v2] = sum(comb(n, k) for k in range(v1 + 1)) / 2 ** n
    return table


BETA_LEAD = _beta_lead_table()


@dataclass
class Simulated:
    """Per draw and pipeline: what the pipeline scores and spends on the questions."""

    accuracy: np.ndarray       # [D, P] share of questions answered right
    calls: np.ndarray          # [D, P] mean calls per question
    tokens: np.ndarray         # [D, P] mean tokens (in + out) per question
    usd: np.ndarray            # [D, P] mean dollars per question
    latency_p50: np.ndarray    # [D, P] median over the questions of the per-question latency
    latency_p95: np.ndarray
    determined: np.ndarray     # [P] every call every question needs is known (a point mass)

    def metric(self, name: str) -> np.ndarray:
        return {"accuracy": self.accuracy, "calls_per_question": self.calls, "usd_per_question": self.usd,
                "latency_p50_s": self.latency_p50, "latency_p95_s": self.latency_p95, "tokens_per_question": self.tokens}[name]


@dataclass(frozen=True)
class Common:
    """The randomness of one block of draws, shared by every pipeline (common random numbers): the
    cells' accuracies and, per generator, question and sample index, the uniforms that decide
    whether a drawn sample is right, passes the visible tests, is accepted by each judge, and
    repeats the canonical answer. Pipelines that share samples then share their fate, so their
    differences are not swamped by simulation noise."""

    p: np.ndarray            # [D, G, Q]
    correct: np.ndarray      # [D, G, Q, M]
    passes: np.ndarray       # [D, G, Q, M]
    joins: np.ndarray        # [D, G, Q, M]
    mute: np.ndarray         # [D, G, Q, M]
    verdicts: np.ndarray     # [J, D, G, Q, M]
    agreement: np.ndarray    # [2 right/wrong, 2 by text/behaviour, D, G, Q] chance to repeat the modal key

    @classmethod
    def draw(cls, posterior, known: KnownArrays, rng: np.random.Generator, d: np.ndarray, judges: int,
             samples: int) -> Common:
        G, Q = posterior.theta.shape[1], posterior.b.shape[1]
        shape = (len(d), G, Q, samples)
        agreement = np.stack([np.stack([known.agreement(len(d), rng, o, mode) for mode in (0, 1)]) for o in (0, 1)])
        return cls(posterior.cell_p(rng, d), rng.random(shape), rng.random(shape), rng.random(shape), rng.random(shape),
                   rng.random((judges,) + shape), agreement)


@dataclass(frozen=True)
class Context:
    """What the simulators share: the known arrays and dicts, and the index of every generator and judge."""

    known: KnownArrays
    generators: list                           # Generator per index g
    judges: dict[str, list]                    # role -> Judge per index
    visible: int                               # 1 when verifier 0 is the visible tests, else 0
    ranks: dict
    critiques: dict
    fused: dict

    def gen(self, key: str) -> int:
        return [g.key for g in self.generators].index(key)

    def judge(self, role: str, key: str) -> int:
        return [j.key for j in self.judges[role]].index(key)


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def usd_of(model, costs, tokens_in, tokens_out):
    """Dollars of calls to ``model`` (a ModelSpec): its price, else what its recorded calls cost per token."""
    if model.price is not None:
        return (tokens_in * model.price.input_per_mtok + tokens_out * model.price.output_per_mtok) / 1e6
    return (tokens_in + tokens_out) * costs.model.usd_per_token.get(model.id, 0.0)


def simulate_sampling(posterior, plans: list[Plan], ctx: Context, costs, rng: np.random.Generator, d: np.ndarray,
                      common: Common) -> dict[str, np.ndarray]:
    """Sampling-family plans on every question for draws ``d``: per-question outcomes [D, P, Q]."""
    ka, P, Q, D = ctx.known, len(plans), ctx.known.questions, len(d)
    N = max(p.slots for p in plans)
    slot_g, slot_i, used = np.zeros((P, N), int), np.zeros((P, N), int), np.zeros((P, N), bool)
    for p, plan in enumerate(plans):
        s = 0
        for gen, n in plan.sources:
            slot_g[p, s:s + n], slot_i[p, s:s + n], used[p, s:s + n] = ctx.gen(gen.key), np.arange(n), True
            s += n
    M = ka.correct.shape[2]
    at = (slot_g[:, None, :], np.arange(Q)[None, :, None], np.minimum(slot_i, M - 1)[:, None, :])
    is_known = (slot_i[:, None, :] < ka.m[at[:2]]) & used[:, None, :]                       # [P, Q, N]
    beh = np.array([plan.by_behaviour for plan in plans])
    testable = ka.testable[None, None, :]                                                     # [1, 1, Q]
    shape, position = (D, P, Q, N), np.arange(N)
    # -- each slot's sample: right?, visible-test rate, vote key --------------------------------
    u = (slice(None), at[0], at[1], slot_i[:, None, :])                                      # common draws by slot
    correct = np.where(is_known, ka.correct[at], common.correct[u] < common.p[:, at[0], at[1]])
    skill = posterior.theta[d][:, slot_g][:, :, None, :] - posterior.b[d][:, None, :, None]
    if ctx.visible:
        c0 = sigmoid(posterior.tau[d][:, 0, :][:, slot_g])[:, :, None, :]
        f0 = sigmoid(posterior.gamma[d][:, 0, :][:, slot_g][:, :, None, :] - posterior.lam[d][:, 0][:, None, None, None] * skill)
        drawn_pass = common.passes[u] < np.where(correct, c0, f0)
    else:
        drawn_pass = np.zeros(shape, bool)
    rate = np.where(is_known, ka.rate[at], drawn_pass.astype(float))
    mode = beh[:, None, None]
    cluster = np.where(is_known, np.where(mode, ka.cluster[1][at], ka.cluster[0][at]), 0)
    mode4 = beh[None, :, None, None] & testable[..., None]   # without visible tests a behaviour vote compares text
    agree = np.where(correct, np.where(mode4, common.agreement[0, 1][:, at[0], at[1]], common.agreement[0, 0][:, at[0], at[1]]),
                     np.where(mode4, common.agreement[1, 1][:, at[0], at[1]], common.agreement[1, 0][:, at[0], at[1]]))
    joins = common.joins[u] < agree
    drawn_id = np.where(joins, np.where(correct, CANONICAL, MODAL_WRONG), FRESH + position)
    # a program that passes every visible test returns the expected values on their inputs: by
    # behaviour it is one answer with the right programs, false positive or not
    drawn_id = np.where(mode4 & testable[..., None] & (rate == 1.0), CANONICAL, drawn_id)
    cluster = np.where(is_known, cluster, drawn_id)
    muted = ~correct & (common.mute[u] < ka.mute_rate)          # a wrong program that raised on every input
    level = np.where(is_known, np.where(mode, ka.level[1][at], ka.level[0][at]),
                     np.where(mode[None] & testable[..., None] & ~muted, 2, 1))
    # -- the calls' costs: recorded where known, drawn where not ---------------------------------
    gen_cost = np.zeros((3, *shape))
    for g, gen in enumerate(ctx.generators):
        mine = slot_g == g
        if mine.any():
            drawn_c = costs.sample(gen.model.id, "generate", 1, shape, rows=d)
            gen_cost = np.where(mine[None, None, :, None, :], drawn_c, gen_cost)
    gen_cost = np.where(is_known[None, None], ka.gen_cost[(slice(None),) + at][:, None], gen_cost)
    J = ka.verdict.shape[0]
    verdicts, ver_cost = [], []
    for j, judge in enumerate(ctx.judges["verify"]):
        k_v = np.where(is_known, ka.verdict[j][at], -1)
        v = ctx.visible + j
        cj = sigmoid(posterior.tau[d][:, v, :][:, slot_g])[:, :, None, :]
        fj = sigmoid(posterior.gamma[d][:, v, :][:, slot_g][:, :, None, :] - posterior.lam[d][:, v][:, None, None, None] * skill)
        verdicts.append(np.where(k_v >= 0, k_v == 1, common.verdicts[j][u] < np.where(correct, cj, fj)))
        ver_cost.append(np.where((k_v >= 0)[None, None], ka.verdict_cost[:, j][(slice(None),) + at][:, None],
                                 costs.sample(judge.model.id, "verify", 1, shape, rows=d)))
    # -- the pipelines' rules --------------------------------------------------------------------
    use = np.broadcast_to(used[None, :, None, :], shape)
    surv = use.copy()
    drawn = use.sum(axis=-1)
    accepted = np.array([plan.stop == "accepted" for plan in plans])
    settled = np.array([plan.stop == "settled" for plan in plans])
    calls, tok, usd, lat, serial = (np.zeros((D, P, Q)) for _ in range(5))
    code0 = np.array([_check_code(ctx, plan, 0) for plan in plans])
    judged_after = settled & (code0 >= 0)      # [P] settled over a judge's verdicts: paid after the stop, below
    for c in range(max((len(plan.checks) for plan in plans), default=0)):
        code = np.array([_check_code(ctx, plan, c) for plan in plans])           # -2 none, -1 tests, j judge j
        policy = np.array([plan.checks[c].policy if c < len(plan.checks) else 0 for plan in plans])[None, :, None, None]
        best = np.array([c < len(plan.checks) and plan.checks[c].best for plan in plans])[None, :, None, None]
        applies = np.where((code == -1)[None, :, None], testable[0], (code >= 0)[None, :, None])    # [1, P, Q]
        verdict = np.where((code == -1)[None, :, None, None], rate == 1.0, False)
        for j in range(J):
            verdict = np.where((code == j)[None, :, None, None], verdicts[j], verdict)
        seq = (c == 0) & accepted                                                  # [P] stops at the first accepted
        inputs = surv
        if c == 0:
            accepted_all = np.where(applies[..., None], verdict, True) & use         # what the first check accepts
        if seq.any():
            ok = accepted_all
            n_used = np.where(ok.any(axis=-1), np.argmax(ok, axis=-1) + 1, use.sum(axis=-1))
            drawn = np.where(seq[None, :, None], n_used, drawn)
            inputs = np.where(seq[None, :, None, None], use & (position < n_used[..., None]), inputs)
        for j, judge in enumerate(ctx.judges["verify"]):
            mine = inputs & ((code == j) & ~(judged_after & (c == 0)))[None, :, None, None]
            _add_judge_calls(mine, seq, j, judge, ver_cost, costs, calls, tok, usd, serial, lat)
        passing = verdict & inputs
        any_pass = passing.any(axis=-1, keepdims=True)
        first_in = (np.cumsum(inputs, axis=-1) == 1) & inputs
        top = np.where(inputs, rate, -1.0).max(axis=-1, keepdims=True)
        none = np.where(policy == ABSTAIN, False, np.where(policy == FALLBACK, first_in, inputs))
        best_kept = inputs & (rate == top)
        kept = np.where(applies[..., None], np.where(best, best_kept, np.where(any_pass, passing, none)), surv)
        if seq.any():
            ok = np.where(applies[..., None], verdict, True) & inputs
            found = ok.any(axis=-1, keepdims=True)
            one = (position == np.argmax(ok, axis=-1)[..., None]) & found
            kept = np.where(seq[None, :, None, None], np.where(found, one, np.where(best, best_kept, none)), kept)
        surv = np.where((code != -2)[None, :, None, None], kept, surv)
    if settled.any():  # the vote over the drawn samples, or over the accepted ones when a check comes first
        checked = np.array([bool(plan.checks) for plan in plans])[None, :, None, None]
        n = use.sum(axis=-1)
        pool = np.where(checked, accepted_all, use) if checked.any() else use
        stop_at = _settled_prefix(cluster, level, pool, n, np.array([plan.confidence for plan in plans]), settled)
        drawn = np.where(settled[None, :, None], stop_at, drawn)
        prefix = position < stop_at[..., None]
        early = (stop_at < n)[..., None]
        surv = np.where(settled[None, :, None, None], np.where(checked, np.where(early, pool & prefix, surv), use & prefix),
                        surv)
        for j, judge in enumerate(ctx.judges["verify"]):
            mine = use & prefix & (judged_after & (code0 == j))[None, :, None, None]
            _add_judge_calls(mine, judged_after, j, judge, ver_cost, costs, calls, tok, usd, serial, lat)
    made = use & (position < drawn[..., None])
    calls += drawn
    tok += np.where(made, gen_cost[0] + gen_cost[1], 0.0).sum(axis=-1)
    for g, gen in enumerate(ctx.generators):
        mine = made & (slot_g == g)[None, :, None, :]
        usd += (mine * usd_of(gen.model, costs, gen_cost[0], gen_cost[1])).sum(axis=-1)
    gen_lat = np.where(made, gen_cost[2], 0.0)
    lat += np.where((accepted | settled)[None, :, None], gen_lat.sum(axis=-1) + serial, gen_lat.max(axis=-1))
    right = _choose(correct, cluster, level, surv, np.array([plan.vote for plan in plans]))
    return {"correct": right, "calls": calls, "tokens": tok, "usd": usd, "latency": lat,
            "determined": _sampling_determined(ka, plans, ctx, slot_g, slot_i, used, is_known)}


def _add_judge_calls(mine, seq, j, judge, ver_cost, costs, calls, tok, usd, serial, lat) -> None:
    """Add judge ``j``'s calls on the ``mine`` samples (in place); ``seq`` [P]: one after another."""
    calls += mine.sum(axis=-1)
    tok += (mine * (ver_cost[j][0] + ver_cost[j][1])).sum(axis=-1)
    usd += (mine * usd_of(judge.model, costs, ver_cost[j][0], ver_cost[j][1])).sum(axis=-1)
    step = np.where(mine, ver_cost[j][2], 0.0)
    serial += np.where(seq[None, :, None], step.sum(axis=-1), 0.0)
    lat += np.where(seq[None, :, None], 0.0, step.max(axis=-1))


def _check_code(ctx: Context, plan: Plan, c: int) -> int:
    if c >= len(plan.checks):
        return -2
    check = plan.checks[c]
    return -1 if check.judge is None else ctx.judge("verify", check.judge.key)


def _settled_prefix(cluster, level, pool, n, confidence, settled) -> np.ndarray:
    """[D, P, Q] samples drawn before the vote over the ``pool`` samples among them was settled
    (Adaptive-Consistency's rule), at most ``n``."""
    D, P, Q, N = cluster.shape
    eq = cluster[..., :, None] == cluster[..., None, :]
    stop = n.copy()
    done = np.zeros((D, P, Q), bool)
    for k in range(1, N + 1):
        prefix = pool & (np.arange(N) < k)
        top = np.where(prefix, level, -1).max(axis=-1, keepdims=True)
        voters = prefix & (level == top)
        count = np.where(voters, (eq & voters[..., None, :]).sum(axis=-1), 0)
        v1 = count.max(axis=-1)
        lead = np.take_along_axis(cluster, np.argmax(count, axis=-1)[..., None], axis=-1)
        v2 = np.where(voters & (cluster != lead), count, 0).max(axis=-1)
        remaining = n - k
        sure = (v1 > v2 + remaining) | (BETA_LEAD[np.minimum(v1, 64), np.minimum(v2, 64)] >= confidence[None, :, None])
        now = settled[None, :, None] & ~done & sure & (k <= n)
        stop = np.where(now, k, stop)
        done |= now
    return stop


def _choose(correct, cluster, level, surv, vote) -> np.ndarray:
    """[D, P, Q] 1.0 where the pipeline answers right: plurality among survivors (ties: earliest) or the first."""
    N = correct.shape[-1]
    top = np.where(surv, level, -1).max(axis=-1, keepdims=True)
    voters = surv & (level == top)
    count = np.where(voters, ((cluster[..., :, None] == cluster[..., None, :]) & voters[..., None, :]).sum(axis=-1), -1)
    winner = np.where(vote[None, :, None], np.argmax(count * (N + 1) - np.arange(N), axis=-1), np.argmax(surv, axis=-1))
    chosen = np.take_along_axis(correct, winner[..., None], axis=-1)[..., 0]
    return np.where(surv.any(axis=-1), chosen, False).astype(float)


def _sampling_determined(ka, plans, ctx, slot_g, slot_i, used, is_known) -> np.ndarray:
    out = np.zeros(len(plans), bool)
    for p, plan in enumerate(plans):
        need = used[p]
        ok = bool(is_known[p][:, need].all())
        for check in plan.checks:
            if ok and check.judge is not None:
                j = ctx.judge("verify", check.judge.key)
                g, i = slot_g[p][need], slot_i[p][need]
                ok = bool((ka.verdict[j][g, :, i] >= 0).all())
        out[p] = ok
    return out
