"""``archsearch optimize --estimate``: what the search as configured would cost, before any call.

The search itself runs, several times, against stand-in models: the same space, objective, trials,
halving, budget and sampler, then the same conclusion (the select and final splits), the same call
cache read (calls it already holds are free, as in the real search; what the stand-ins answer is
kept apart and thrown away). A stand-in answers a question right with a probability of its own,
drawn per model and run from 0 to 1. The calls each run pays give the range of calls; dollars are
those calls at the models' prices, with prompt tokens from the real prompts (about 4 characters a
token) and output tokens from what the cache's calls of that model wrote -- for a model nothing is
recorded of, a wide prior (median 100 tokens, 90% from 4 to 2,700, capped by ``max_tokens``: a
short-answer endpoint and a verbose reasoner both fall inside) -- drawn 2,000 times over the runs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..llm.budget import Budget
from ..llm.cache import CallCache
from ..llm.client import LLMClient
from ..llm.types import Completion
from .search import Search, SearchSettings


class _Overlay:
    """The real cache for reading; what the stand-ins answer goes to a scratch cache."""

    claims = False

    def __init__(self, real: CallCache | None, scratch: CallCache) -> None:
        self.real, self.scratch = real, scratch

    def get(self, key: str):
        return self.scratch.get(key) or (self.real.get(key) if self.real is not None else None)

    def put(self, *args) -> None:
        self.scratch.put(*args)

    def created(self, key: str):
        return None


class StandIn:
    """A model that answers from the task's references: right with its own probability."""

    def __init__(self, references: dict[str, str], seed: int) -> None:
        self.references, self.rng = references, random.Random(seed)
        self.skill: dict[str, float] = {}
        self.prompts: list[tuple[str, int, int]] = []     # (model, prompt tokens, max_tokens) of every call

    async def complete(self, model_id: str, messages, params, sample_index: int = 0) -> Completion:
        await asyncio.sleep(0)
        skill = self.skill.setdefault(model_id, self.rng.random())
        tokens_in = sum(len(m["content"]) for m in messages) // 4 + 10 * len(messages)
        self.prompts.append((model_id, tokens_in, int(params.get("max_tokens", 512))))
        prompt = messages[-1]["content"]
        reference = next((ref for text, ref in self.references.items() if text in prompt), "0")
        if "Verdict" in prompt:
            text = "Verdict: " + ("correct" if self.rng.random() < 0.6 else "incorrect")
        elif "Rank the candidates" in prompt:
            text = "[1] > [2]"
        else:
            text = f"The answer is {reference if self.rng.random() < skill else '-1'}."
        return Completion(text=text, tokens_in=tokens_in, tokens_out=8)


@dataclass
class Estimate:
    runs: list[dict]

    def band(self, key: str) -> tuple[float, float, float]:
        """(median, 5%, 95%): calls and seconds over the runs (their extremes, with few runs), dollars
        over every run's draws."""
        if key == "usd":
            values = np.concatenate([r["usd_draws"] for r in self.runs])
            return float(np.median(values)), float(np.percentile(values, 5)), float(np.percentile(values, 95))
        values = np.array([r[key] for r in self.runs], float)
        return float(np.median(values)), float(values.min()), float(values.max())

    def as_dict(self) -> dict:
        runs = [{k: v for k, v in r.items() if k != "usd_draws"} for r in self.runs]
        return {"runs": runs, **{k: dict(zip(("median", "low90", "high90"), self.band(k)))
                                 for k in ("paid_calls", "usd", "seconds")}}


def _recorded(cache: CallCache | None) -> tuple[dict[str, float], dict[str, float]]:
    """Per model: mean output tokens and mean latency of its recorded calls (empty without a cache)."""
    if cache is None:
        return {}, {}
    tokens, seconds = {}, {}
    for model, row in cache.responses():
        tokens.setdefault(model, []).append(row.get("tokens_out", 0))
        seconds.setdefault(model, []).append(row.get("latency_s", 0.0))
    return ({m: float(np.mean(v)) for m, v in tokens.items()}, {m: float(np.mean(v)) for m, v in seconds.items()})


def estimate(settings: SearchSettings, cache: CallCache | None, runs: int = 4, concurrency: int = 8) -> Estimate:
    references = {r.text: str(r.reference) for r in settings.task.records}
    tokens_out, latency = _recorded(cache)
    prices = {m.id: m.price for m in (settings.space.models_spec().values())}
    rng, out = np.random.default_rng(settings.seed), []
    surrogate = _shared_surrogate(settings)
    for seed in range(runs):
        with tempfile.TemporaryDirectory(prefix="archsearch-estimate-") as scratch:
            out.append(_dry_run(settings, cache, references, Path(scratch), seed, concurrency, latency, surrogate))
    for run in out:
        run["usd_draws"] = _dollars(run.pop("calls"), prices, tokens_out, rng, 2000 // runs)
    return Estimate(out)


def _shared_surrogate(settings: SearchSettings):
    """One surrogate for every dry run: its fits compile once per shape, not once per run."""
    if settings.sampler != "surrogate":
        return None
    from .sampler import search_surrogate

    return search_surrogate(settings.seed)


def _dry_run(settings: SearchSettings, cache: CallCache | None, references: dict, folder: Path, seed: int,
             concurrency: int, latency: dict[str, float], surrogate) -> dict:
    """One search and its conclusion against stand-ins: the calls it paid for and its wall time."""
    from .conclude import conclude

    stand_in = StandIn(references, seed)
    budget = Budget(usd=settings.budget.usd, calls=settings.budget.calls)
    scratch = CallCache(f"sqlite:///{folder / 'scratch.sqlite'}")
    client = LLMClient(stand_in, _Overlay(cache, scratch),
                       max_concurrency=concurrency, hedging=False)
    dry = dataclasses.replace(settings, storage=":memory:", study_name=f"estimate-{seed}", seed=settings.seed + seed,
                              out_dir=folder, budget=budget)
    start = time.perf_counter()
    search = Search(dry, client, surrogate=surrogate)
    search.run()
    if search.front():
        conclude(search, seed=seed, fit="svi")   # what is chosen matters here, not its intervals
    calls = stand_in.prompts
    seconds = sum(latency.get(m, 2.0) for m, _, _ in calls) / concurrency + time.perf_counter() - start
    scratch.engine.dispose()
    return {"paid_calls": len(calls), "seconds": seconds, "calls": calls}


def _dollars(calls: list[tuple[str, int, int]], prices: dict, tokens_out: dict[str, float], rng,
             draws: int) -> list[float]:
    """Draws of what these calls cost: each model's typical output length drawn once per draw. For
    models nothing is recorded of, one draw serves them all: how long an answer is depends mostly on
    the task and its prompt, which they share."""
    total = np.zeros(draws)
    verbosity = rng.normal(0.0, 1.0, draws)
    for model in sorted({m for m, _, _ in calls}):
        price = prices.get(model)
        if price is None:
            continue
        mine = [(t, cap) for m, t, cap in calls if m == model]
        known = tokens_out.get(model)
        typical = np.exp(rng.normal(np.log(known), 0.3, draws)) if known else np.exp(np.log(100.0) + 2.0 * verbosity)
        caps = np.array([cap for _, cap in mine])
        out = np.minimum(caps[None, :], typical[:, None]).sum(axis=1)
        total += (sum(t for t, _ in mine) * price.input_per_mtok + out * price.output_per_mtok) / 1e6
    return total.tolist()


def best_accuracy(settings: SearchSettings, cache: CallCache | None, rng: np.random.Generator):
    """The posterior accuracy on new questions of the space's best pipeline (by posterior mean), from
    what the cache already holds; None when it holds nothing of this task yet."""
    from ..bayes.evidence import Evidence
    from ..bayes.plan import plan_of
    from ..bayes.summary import Band

    if cache is None:
        return None
    specs = [spec for _, spec in settings.space.pipelines(settings.task)]
    plans = [p for p in (plan_of(s) for s in specs) if p is not None]
    if not plans:
        return None
    evidence = Evidence(settings.task, settings.task.split("search"), cache, {}, plans)
    if evidence.refresh() is None:
        return None
    sim = evidence.on_new(plans, 512, rng, population=True)
    best = int(np.argmax(sim.accuracy.mean(axis=0)))
    return Band.of(sim.accuracy[:, best]), specs[[plan_of(s) for s in specs].index(plans[best])]
