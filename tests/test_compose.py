"""The surrogate composes any layer order the runtime accepts: replaying known calls through the
techniques' steps gives exactly what the real pipelines score and spend, and what is not known is
drawn from the model."""

import asyncio
from pathlib import Path

import numpy as np

from archsearch.bayes.evidence import Evidence
from archsearch.bayes.non_call import NonCallTimes
from archsearch.bayes.observe import Observer
from archsearch.bayes.plan import plan_of
from archsearch.candidates import enumerate_space
from archsearch.evaluate import aevaluate
from archsearch.llm import CallCache, LLMClient
from archsearch.pipeline import Pipeline
from archsearch.space import SearchSpace
from archsearch.tasks import Task
from archsearch.testing import FakeLLM
from archsearch.testing.arithmetic import NoisyArithmetic

FIXTURE = Path(__file__).parent / "fixtures" / "compositions"


def _answers():
    noisy = NoisyArithmetic({"fake/strong": 0.6, "fake/weak": 0.35})

    def answer(model, messages, params):
        prompt = messages[-1]["content"]
        if "Rank the candidates" in prompt or "strengths and weaknesses" in prompt:
            return None          # the fake's own ranking and critique
        return noisy(model, messages, params)
    return answer


def _run_all(tmp_path: Path, records_of=lambda task: task.split("search")):
    task = Task(FIXTURE / "task.yaml")
    specs = [spec for _, spec in enumerate_space(SearchSpace(FIXTURE / "space.yaml"), task)]
    cache = CallCache(f"sqlite:///{tmp_path / 'calls.sqlite'}")
    client = LLMClient(FakeLLM(answers=_answers()), cache)
    records = records_of(task)

    async def measure():
        try:
            return [(await aevaluate(Pipeline(s, client), task, records, "search")).measured() for s in specs]
        finally:
            await client.release_loop()
    return task, specs, cache, asyncio.run(measure())


def test_replay_equals_runtime_on_every_composition(tmp_path):
    task, specs, cache, measured = _run_all(tmp_path)
    plans = [plan_of(s) for s in specs]
    assert len(specs) == 104 and all(p is not None for p in plans)
    orders = {tuple(layer.kind for layer in s.layers) for s in specs}
    for wanted in [("generate", "verify", "fuse", "vote"), ("generate", "rank", "verify"),
                   ("generate", "verify", "verify", "vote"), ("generate", "generate", "critique", "rank", "fuse")]:
        assert wanted in orders
    evidence = Evidence(task, task.split("search"), cache, {}, plans)
    assert evidence.refresh(method="svi") is not None
    sim = evidence.on_search(plans, np.random.default_rng(0), np.array([0]))
    assert sim.determined.all()
    np.testing.assert_array_equal(sim.accuracy[0], [m.accuracy for m in measured])
    np.testing.assert_allclose(sim.calls[0], [m.calls_per_question for m in measured])
    np.testing.assert_allclose(sim.usd[0], [m.usd_per_question for m in measured], rtol=1e-9)
    # the model saw the verdicts, rankings and fusions the pipelines made
    assert len(evidence.objects.ranks) and len(evidence.objects.fused) and len(evidence.objects.critiques)
    # nothing new in the cache: the next refresh neither reads it again nor refits
    reads, observe = [], evidence.observer.observe
    evidence.observer.observe = lambda plans: reads.append(len(plans)) or observe(plans)
    fitted = evidence._fitted
    evidence.refresh(method="svi")
    assert reads == [] and evidence._fitted is fitted
    cache.put("a-call-no-plan-makes", "fake/strong", {}, {"text": "1"})
    evidence.refresh(method="svi")
    assert reads == [len(plans)]
    _non_call_time_covers_replayed_latency(task, specs, cache, evidence, plans)


def _non_call_time_covers_replayed_latency(task, specs, cache, evidence, plans):
    """Replayed from the cache, a pipeline's latency is its calls' recorded latencies plus the
    runtime's own time in layers that paid no call (votes, filters, cache reads): without that time
    the prediction is a point the measured figure misses; with the times half the pipelines measured,
    most of the other half's measured p50 fall inside the predicted 5-95% interval, and nothing but
    latency moves (its draws come from streams of their own)."""
    client = LLMClient(FakeLLM(answers=_answers()), cache)

    async def replay():
        try:
            return [await aevaluate(Pipeline(s, client), task, task.split("search"), "search") for s in specs]
        finally:
            await client.release_loop()
    reports = asyncio.run(replay())
    assert client.stats.calls == 0
    measured = np.array([r.measured().latency_p50_s for r in reports])
    rng = np.random.default_rng(1)
    learn = np.zeros(len(plans), bool)
    learn[rng.choice(len(plans), len(plans) // 2, replace=False)] = True
    held = np.flatnonzero(~learn)
    before = evidence.on_search([plans[i] for i in held], np.random.default_rng(2), np.arange(40))
    evidence.non_call = NonCallTimes.of(reports[i].non_call_times() for i in np.flatnonzero(learn))
    assert set(evidence.non_call.by_kind) >= {"generate", "vote", "verify"}
    after = evidence.on_search([plans[i] for i in held], np.random.default_rng(2), np.arange(40))
    for name in ("accuracy", "calls", "usd", "tokens", "bought"):
        np.testing.assert_array_equal(getattr(after, name), getattr(before, name))
    assert (after.latency_p50 >= before.latency_p50).all()

    def covered(sim):
        lo, hi = np.percentile(sim.latency_p50, [5, 95], axis=0)
        return np.mean((lo - 1e-12 <= measured[held]) & (measured[held] <= hi + 1e-12))
    print(f"replayed p50 latency inside the 90% interval: {covered(before):.2f} without non-call time, "
          f"{covered(after):.2f} with it ({len(held)} pipelines)")
    assert covered(before) < 0.2     # a point at the calls' latencies, below what replay measures
    assert covered(after) >= 0.5     # on the fake every call takes milliseconds: the runtime's own time is all there is


def test_a_read_asks_again_only_for_lookups_whose_call_the_cache_now_holds(tmp_path):
    """The observer reads a growing cache many times in a search; a lookup that missed is not asked
    again while its call is still missing, and what a later read finds equals a fresh read."""
    task = Task(FIXTURE / "task.yaml")
    records = task.split("search")
    specs = [spec for _, spec in enumerate_space(SearchSpace(FIXTURE / "space.yaml"), task)]
    plans = [plan_of(s) for s in specs]
    cache = CallCache(f"sqlite:///{tmp_path / 'calls.sqlite'}")
    client = LLMClient(FakeLLM(answers=_answers()), cache)

    def buy(chosen, rows):
        async def run():
            try:
                for s in chosen:
                    await aevaluate(Pipeline(s, client), task, rows, "search")
            finally:
                await client.release_loop()
        asyncio.run(run())

    def observed(observer):   # by text: a read that grew in steps numbers the answers in another order
        o = observer.objects
        return ([[[o.texts[q][x] for x, _ in cell] for q, cell in enumerate(g)] for g in o.samples],
                {(j, q, o.texts[q][x]): v[0] for (j, q, x), v in o.verdicts.items()},
                {(c, q, o.texts[q][x]): v[0] for (c, q, x), v in o.critiques.items()})

    buy(specs[::2], records[:2])
    reader = Observer(task, records, cache, {})
    asked = []
    complete = reader._remembered.complete

    async def counted(model, messages, **params):
        asked.append(params["sample_index"])
        return await complete(model, messages, **params)
    reader._remembered.complete = counted
    reader.observe(plans)
    first = len(asked)
    reader.observe(plans)
    assert first > 0 and len(asked) == first     # nothing new in the cache: not one lookup asked again
    buy(specs[1::2], records[1:3])
    reader.observe(plans)
    assert len(asked) > first
    fresh = Observer(task, records, cache, {})
    fresh.observe(plans)
    assert observed(reader) == observed(fresh)
