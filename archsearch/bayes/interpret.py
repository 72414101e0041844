"""The predictive distribution of what pipelines score and spend on a set of questions.

Per posterior draw, each pipeline runs on each question by its own layers' steps (``steps/``):
the calls the cache holds are replayed (samples, verdicts, critiques, rankings, fusions and their
tokens and latency) and the rest are drawn from the model. Pipelines with the same signature
(kinds, in the same runtime steps) are simulated together, vectorised over draws x pipelines x
questions x candidate slots; a pipeline whose every call is known gets a point mass at its
measured score.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from .non_call import NonCallTimes, stream_beside
from .plan import Plan
from .steps import step_class
from .steps.generate import GenerateStep
from .steps.sequential import SequentialStep
from .steps.state import Context, Draws, State, Step


@dataclass
class Simulated:
    """Per draw and pipeline: what the pipeline scores and spends on the questions."""

    accuracy: np.ndarray       # [D, P] share of questions answered right
    calls: np.ndarray          # [D, P] mean calls per question
    tokens: np.ndarray         # [D, P] mean tokens (in + out) per question
    usd: np.ndarray            # [D, P] mean dollars per question
    latency_p50: np.ndarray    # [D, P] median over the questions of the per-question latency
    latency_p95: np.ndarray
    bought: np.ndarray         # [D, P] calls the cache does not hold, over all the questions
    determined: np.ndarray     # [P] every call every question needs is known (a point mass)

    def metric(self, name: str) -> np.ndarray:
        return {"accuracy": self.accuracy, "calls_per_question": self.calls, "usd_per_question": self.usd,
                "latency_p50_s": self.latency_p50, "latency_p95_s": self.latency_p95, "tokens_per_question": self.tokens}[name]


class Group:
    """Plans of one signature and their steps, in the runtime's order."""

    def __init__(self, plans: list[Plan], members: list[int], ctx: Context) -> None:
        self.members, self.ctx = members, ctx
        first = plans[0]
        self.steps: list[list[Step]] = []
        offset = 0
        for step in first.steps:
            built = self._build(plans, step, first.sequential(step), ctx)
            for s in built:
                s.offset = offset
                if isinstance(s, SequentialStep):
                    s.gen.offset = offset
                offset += s.adds
            self.steps.append(built)
        self.slots = offset

    @staticmethod
    def _build(plans: list[Plan], step: tuple[int, ...], stop: str, ctx: Context) -> list[Step]:
        def make(i: int) -> Step:
            layers = [plan.layers[i] for plan in plans]
            return step_class(layers[0].kind)(layers, ctx)

        if stop == "never":
            return [make(i) for i in step]
        parts = [make(i) for i in step]
        filt = next((p for p in parts[1:] if p.kind != "vote"), None)
        vote = next((p for p in parts[1:] if p.kind == "vote"), None)
        return [SequentialStep(parts[0], filt, vote, stop)]

    def samples_needed(self) -> int:
        gens = [s.gen if isinstance(s, SequentialStep) else s for step in self.steps for s in step]
        return max([g.last_index for g in gens if isinstance(g, GenerateStep)], default=1)

    def run(self, draws: Draws, Q: int, non_call: NonCallTimes | None = None,
            non_call_rng: np.random.Generator | None = None) -> dict[str, np.ndarray]:
        s = State.empty(len(draws.d), len(self.members), Q, max(self.slots, 1))
        latency = np.zeros(s.calls.shape)
        run = non_call_rng.random(s.calls.shape[:2] + (4,)) if non_call else None   # per pipeline: its evaluation; which level speaks
        for step in self.steps:
            calls = np.max([part.apply(s, draws) for part in step], axis=0)
            if non_call:
                places = [p for part in step for p in part.layer_places()]
                calls = np.maximum(calls, non_call.draw(places, run, Q, non_call_rng))
            latency += calls
        first = s.first(s.alive)
        correct = (first & s.correct).any(axis=-1)
        return {"correct": correct.astype(float), "calls": s.calls, "tokens": s.tokens, "usd": s.usd,
                "latency": latency, "bought": s.bought, "exact": s.exact}


def simulate(posterior, plans: list[Plan], ctx: Context, cost_model, rng: np.random.Generator,
             draws: np.ndarray | None = None, budget: int = 2_000_000, workers: int | None = None,
             non_call: NonCallTimes | None = None) -> Simulated:
    """``budget`` bounds the slots of one vectorised block (draws x pipelines x questions x slots).
    ``workers``: None runs the blocks one after another from ``rng``'s own stream; a number runs
    them in that many threads (numpy releases the GIL inside its array work), each block from its
    own stream spawned from ``rng`` -- the same figures for any number of workers. ``non_call``:
    the measured non-call times per step (``non_call.py``), drawn from streams of their own."""
    d_all = np.arange(posterior.draws) if draws is None else np.asarray(draws)
    parallel = workers is not None
    costs = cost_model.draw(rng, posterior.draws, keyed=parallel)
    P, Q, D = len(plans), ctx.arrays.questions, len(d_all)
    per_q = {k: np.zeros((D, P, Q)) for k in ("correct", "calls", "tokens", "usd", "latency", "bought")}
    width = budget // max(1, Q)
    groups = _groups(plans, ctx, width)
    samples = max([g.samples_needed() for g in groups], default=1)
    widest = max([len(g.members) * max(g.slots, 1) for g in groups], default=1)
    block = max(1, min(D, budget // max(1, widest * Q)))
    starts = list(range(0, D, block))
    streams = rng.spawn(len(starts)) if parallel else [rng] * len(starts)
    beside = [stream_beside(r, k) for k, r in enumerate(streams)] if non_call else [None] * len(starts)

    def run(blocks: list[int], groups: list[Group]) -> np.ndarray:
        """Fill ``per_q`` for these blocks; what every question's calls were known for, [P, Q]."""
        known = np.ones((P, Q), bool)
        for k in blocks:
            d = d_all[starts[k]:starts[k] + block]
            rows = slice(starts[k], starts[k] + len(d))
            common = Draws.draw(posterior, ctx.arrays, costs, streams[k], d, samples)
            for group in groups:
                out = group.run(common, Q, non_call, beside[k])
                for key in per_q:
                    per_q[key][rows, group.members] = out[key]
                known[group.members] &= out["exact"].all(axis=0)
        return known

    if parallel and len(starts) > 1:   # a step keeps state while it runs: each thread builds its own
        shares = [list(range(w, len(starts), workers)) for w in range(min(workers, len(starts)))]
        with ThreadPoolExecutor(len(shares)) as pool:
            found = list(pool.map(run, shares, [groups] + [_groups(plans, ctx, width) for _ in shares[1:]]))
        exact = np.logical_and.reduce(found)
    else:
        exact = run(list(range(len(starts))), groups)
    latency = per_q["latency"]
    return Simulated(accuracy=per_q["correct"].mean(axis=2), calls=per_q["calls"].mean(axis=2),
                     tokens=per_q["tokens"].mean(axis=2), usd=per_q["usd"].mean(axis=2),
                     latency_p50=np.percentile(latency, 50, axis=2), latency_p95=np.percentile(latency, 95, axis=2),
                     bought=per_q["bought"].sum(axis=2), determined=exact.all(axis=1))


def _groups(plans: list[Plan], ctx: Context, width: int) -> list[Group]:
    """Plans by signature, in chunks whose pipelines x slots fit ``width``."""
    by: dict[tuple, list[int]] = {}
    for i, plan in enumerate(plans):
        by.setdefault(plan.signature, []).append(i)
    out = []
    for members in by.values():
        chunk = max(1, width // max(1, max(plans[i].slots for i in members)))
        for k in range(0, len(members), chunk):
            part = members[k:k + chunk]
            out.append(Group([plans[i] for i in part], part, ctx))
    return out
