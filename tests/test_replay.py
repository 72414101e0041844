"""The surrogate's predictive: replaying known calls must give exactly what the real pipelines
score and spend, and unknown calls must follow the model."""

import asyncio
import dataclasses
import functools
import shutil
from pathlib import Path

import numpy as np
import pytest

from archsearch.bayes.evidence import Evidence
from archsearch.bayes.objects import ObjectArrays
from archsearch.bayes.plan import plan_of
from archsearch.candidates import enumerate_space
from archsearch.errors import LLMCallError
from archsearch.evaluate import aevaluate
from archsearch.llm import CallCache, LLMClient
from archsearch.pipeline import Pipeline
from archsearch.sandbox import RecordedRuns
from archsearch.space import SearchSpace, spec_fingerprint
from archsearch.tasks import Task
from archsearch.testing import FakeLLM

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "compositions"


def _specs(task):
    return [spec for _, spec in enumerate_space(SearchSpace(FIXTURE / "space.yaml"), task)]


def _layers(spec) -> tuple:
    return tuple((layer.kind, layer.params.get("model"), layer.params.get("n")) for layer in spec.layers)


def _partly_known(tmp_path, recorded):
    """Evidence over every composition, with only the ``recorded`` pipelines run (fake LLM)."""
    from test_compose import _answers

    task = Task(FIXTURE / "task.yaml")
    specs = _specs(task)
    cache = CallCache(f"sqlite:///{tmp_path / 'calls.sqlite'}")
    client = LLMClient(FakeLLM(answers=_answers()), cache)

    async def run():
        try:
            for spec in specs:
                if recorded(spec):
                    await aevaluate(Pipeline(spec, client), task, task.split("search"), "search")
        finally:
            await client.release_loop()
    asyncio.run(run())
    plans = [plan_of(s) for s in specs]
    evidence = Evidence(task, task.split("search"), cache, {}, plans)
    evidence.refresh(method="svi")
    return specs, plans, evidence


def _fixed(evidence, p: float, tpr: float = 0.5, fpr: float = 0.5, fuse_a: float = 0.0):
    """The fitted posterior with every generator's accuracy p (no question effects) and the given
    judge rates: what the draws must then follow."""
    post = evidence.posterior
    logit = lambda x: np.log(x / (1 - x))  # noqa: E731
    return dataclasses.replace(
        post, theta=np.full_like(post.theta, logit(p)), b=np.zeros_like(post.b), phi=np.full_like(post.phi, 1e9),
        cell_n=np.zeros_like(post.cell_n), cell_y=np.zeros_like(post.cell_y), tau=np.full_like(post.tau, logit(tpr)),
        gamma=np.full_like(post.gamma, logit(fpr)), lam=np.zeros_like(post.lam),
        fuse={**post.fuse, "a": np.full_like(post.fuse["a"], fuse_a), "b": np.zeros_like(post.fuse["b"]),
              "d": np.zeros_like(post.fuse["d"]), "e": np.zeros_like(post.fuse["e"])})


def test_what_is_not_known_is_drawn_and_priced(tmp_path):
    """Only the n=2 pipelines of the verify-then-fuse family ran: their n=3 siblings replay the first
    two samples and their verdicts, and buy the third sample, its verdict and (mostly) a new fusion."""
    recorded = lambda spec: _layers(spec)[:1] == (("generate", "strong", 2),)  # noqa: E731
    specs, plans, evidence = _partly_known(tmp_path, recorded)
    sim = evidence.on_search(plans, np.random.default_rng(0))
    ran = np.array([recorded(s) for s in specs])
    assert sim.determined[ran].all() and not sim.determined[~ran].any()
    assert (sim.bought[:, ran] == 0).all() and (sim.bought[:, ~ran] > 0).all()
    three = [i for i, s in enumerate(specs) if _layers(s)[:2] == (("generate", "strong", 3), ("verify", "strong", None))
             and len(s.layers) == 3 and s.layers[2].kind == "fuse" and s.layers[2].params["n_out"] == 1]
    Q = len(evidence.observer.records)
    assert three and all(Q <= sim.bought[:, i].mean() <= 3 * Q for i in three)   # sample + verdict + fusion


def test_unknown_samples_follow_the_model(tmp_path):
    specs, plans, evidence = _partly_known(tmp_path, lambda spec: _layers(spec)[0] == ("generate", "strong", 2))
    weak = [i for i, s in enumerate(specs) if _layers(s) == (("generate", "weak", 2), ("verify", "strong", None),
                                                               ("fuse", "strong", None))]

    def accuracy(fuse_a: float) -> float:
        evidence.posterior = _fixed(evidence, 0.3, tpr=1 - 1e-9, fpr=1 - 1e-9, fuse_a=fuse_a)  # the judge accepts all
        return evidence.on_search([plans[i] for i in weak], np.random.default_rng(1)).accuracy.mean()

    # nothing of the weak generator is known, so a fusion is drawn with the fuser's curve, sigmoid(a)
    # here, unless the cache holds that very fusion (the fake's answer texts repeat, so another
    # pipeline may have asked it): accuracy = (right replayed share) + (drawn share) sigmoid(a)
    never, always, even = accuracy(-50.0), accuracy(50.0), accuracy(0.0)
    assert never < 0.1 and always > 0.8
    assert even == pytest.approx((never + always) / 2, abs=0.02)


def test_fresh_questions_know_nothing(tmp_path):
    specs, plans, evidence = _partly_known(tmp_path, lambda spec: _layers(spec)[0] == ("generate", "strong", 2))
    fresh = ObjectArrays.fresh(evidence.arrays, 7, np.ones(7, bool))
    assert fresh.m.shape == (len(evidence.objects.generators), 7) and fresh.m.sum() == 0
    evidence.posterior = _fixed(evidence, 0.3)
    first = next(i for i, s in enumerate(specs) if _layers(s) == (("generate", "strong", 2), ("verify", "strong", None),
                                                                     ("fuse", "strong", None)))
    sim = evidence.on_new([plans[first]], 2000, np.random.default_rng(0), draws=np.arange(4))
    assert sim.accuracy.mean() == pytest.approx(0.5, abs=0.03) and not sim.determined.any()


class _NoCalls:
    async def complete(self, model_id, messages, params, sample_index=0):
        raise LLMCallError(model_id, "not in the shipped pool")


def _real(exp: Path, space: Path, tmp_path: Path, wanted=lambda spec: True):
    shutil.copy(Path(Task(exp / "task.yaml").cache_url.removeprefix("sqlite:///")), tmp_path / "calls.sqlite")
    task = Task(exp / "task.yaml")
    records = task.split("search")
    cache = CallCache(f"sqlite:///{tmp_path / 'calls.sqlite'}")
    # as a search on this machine runs them: the sandbox runs the cache holds are replayed (another
    # Python or isolation level runs them all again), the rest run and are kept
    memo = RecordedRuns(cache)
    client = LLMClient(_NoCalls(), cache, max_retries=0)
    listed = [spec for _, spec in enumerate_space(SearchSpace(space), task)]
    specs = [s for s in {spec_fingerprint(s): s for s in listed}.values() if wanted(s)]   # a no-op setting: one run

    async def measure():
        try:
            return [(await aevaluate(Pipeline(s, client, sandbox_memo=memo), task, records, "search", concurrency=40))
                    for s in specs]
        finally:
            await client.release_loop()

    return task, records, cache, memo, specs, len(listed), asyncio.run(measure())


def test_replay_equals_the_real_pipelines_on_the_shipped_pool(tmp_path):
    """Every distinct pipeline of the sampling space with its prompt variants -- fixed n and
    stopping early, the default instruction or the edge-case one -- run for real on the recorded
    HumanEval pool (cache only; tests in the sandbox, or the cache's record of that very run), scores
    and calls exactly what the simulator gives when every call is known; latency within the test
    layer's sandbox time."""
    def visible_only(spec):   # the written-test pipelines of the space: the next test
        return not any(layer.kind == "test" and layer.params["source"] != "task" for layer in spec.layers)

    task, records, cache, memo, specs, listed, reports = _real(ROOT / "experiments/humaneval-local", ROOT / "spaces/sampling-prompts.yaml",
                                                       tmp_path, visible_only)
    plans = [plan_of(s) for s in specs]
    evidence = Evidence(task, records, cache, memo, plans)
    evidence.refresh(method="svi")
    sim = evidence.on_search(plans, np.random.default_rng(0), np.array([0]))
    assert (listed, len(specs)) == (4032, 928) and not any(r.failures for r in reports)
    assert sim.determined.all() and sum(p.generators()[-1].params.stop != "never" for p in plans) >= 60
    np.testing.assert_array_equal(sim.accuracy[0], [r.measured().accuracy for r in reports])
    np.testing.assert_allclose(sim.calls[0], [r.measured().calls_per_question for r in reports])
    # the real runs also spend the test layer's sandbox seconds where a program's run is neither
    # recorded nor memoised yet (the first pipelines to test), which the replay leaves out: never faster, and
    # equal up to that for nearly every pipeline (sandbox seconds vary with the machine's load)
    real = np.array([r.measured().latency_p50_s for r in reports])
    gap = (real - sim.latency_p50[0]) / real
    assert (gap > -0.01).all()
    assert np.mean(np.abs(gap) <= 0.1) >= 0.99




def test_replay_of_model_written_tests_equals_the_real_pipelines(tmp_path):
    """The model-written tests space on the recorded pool: every pipeline with written tests scores
    and calls exactly what it does for real -- the suspected-wrong rule, ``keep: all``, CodeT's
    agreement vote, and a generator that stops at the first sample its tests accept (each sample
    judged alone, the tests written once per question) included."""
    def written(spec):   # the pipelines with written tests (the others: the test above)
        return any(layer.kind == "test" and layer.params["source"] != "task" for layer in spec.layers)

    task, records, cache, memo, specs, listed, reports = _real(ROOT / "experiments/humaneval-local",
                                                               ROOT / "spaces/sampling-model-tests.yaml", tmp_path, written)
    plans = [plan_of(s) for s in specs]
    covered = list(range(len(specs)))
    assert not any(r.failures for r in reports)
    agreement = [i for i in covered if any(layer.kind == "vote" and layer.params.by == "agreement"
                                           for layer in plans[i].layers)]
    stops = [i for i in covered if plans[i].generators()[-1].params.stop != "never"]
    assert len(covered) >= 100 and len(agreement) >= 20 and len(stops) >= 40
    evidence = Evidence(task, records, cache, memo, [plans[i] for i in covered])
    evidence.refresh(method="svi")
    assert evidence.arrays.written.known.all()
    sim = evidence.on_search([plans[i] for i in covered], np.random.default_rng(0), np.array([0]))
    assert sim.determined.all()
    np.testing.assert_array_equal(sim.accuracy[0], [reports[i].measured().accuracy for i in covered])
    np.testing.assert_allclose(sim.calls[0], [reports[i].measured().calls_per_question for i in covered])


def test_unknown_written_tests_follow_the_model():
    """On new questions every written test is drawn: a right program passes with the writer's TPR,
    once per question (right programs behave alike on a question's tests), a wrong one with its FPR.
    n=8 samples, half of them right; tests that pass right programs half the time and never a wrong
    one; keep the passing, else all: right when the tests pass the right ones (and a sample is
    right), else when the first sample is right -- 0.5 x (1 - 0.5^8) + 0.5 x 0.5 = 0.748. Were the
    verdicts drawn per program, some right program would nearly always pass (about 0.95)."""
    task = Task(ROOT / "experiments/humaneval-local/task.yaml")
    specs = [s for _, s in enumerate_space(SearchSpace(ROOT / "spaces/sampling-model-tests.yaml"), task)]
    plans = [plan_of(s) for s in specs]

    def shape(plan):
        return [(layer.kind, layer.params.n if layer.kind == "generate" else None,
                 layer.params.stop if layer.kind == "generate" else getattr(layer.params, "source", None),
                 getattr(layer.params, "keep", None)) for layer in plan.layers]

    wanted = [("generate", 8, "never", None), ("test", None, "model", "passing")]
    plan = next(p for p in plans if shape(p) == wanted and p.generators()[0].params.temperature > 0)
    evidence = Evidence(task, task.split("search")[:12], CallCache(task.cache_url), {}, [plan])
    evidence.refresh(method="svi")
    assert evidence.arrays.written.known.all()
    post = _fixed(evidence, 0.5, tpr=0.5, fpr=1e-9)
    evidence.posterior = dataclasses.replace(post, sigma_b=np.zeros_like(post.sigma_b))   # every question alike
    sim = evidence.on_new([plan], 4000, np.random.default_rng(0), draws=np.arange(4))
    assert sim.accuracy.mean() == pytest.approx(0.748, abs=0.02)
    assert (sim.bought[:, 0] >= 4000 * (8 + 2)).all()   # 8 samples and 2 writer calls per question


def test_threaded_new_questions_give_the_same_figures_for_any_number_of_threads(tmp_path, monkeypatch):
    """The report simulates new questions in threads, each block of draws from its own stream: the
    figures must not depend on how many threads ran them (nor on which thread drew a cost first)."""
    import archsearch.bayes.evidence as evidence_module
    from archsearch.bayes.interpret import simulate

    monkeypatch.setattr(evidence_module, "simulate", functools.partial(simulate, budget=1000))   # a block per draw
    specs, plans, evidence = _partly_known(tmp_path, lambda spec: _layers(spec)[0] == ("generate", "strong", 2))
    evidence.posterior = _fixed(evidence, 0.3)
    runs = [evidence.on_new(plans, 600, np.random.default_rng(3), draws=np.arange(4), workers=w) for w in (1, 2, 3)]
    for other in runs[1:]:
        for name in ("accuracy", "calls", "tokens", "latency_p50", "bought"):
            np.testing.assert_array_equal(getattr(runs[0], name), getattr(other, name))
    single = evidence.on_new(plans, 600, np.random.default_rng(3), draws=np.arange(4))
    assert not np.array_equal(single.latency_p50, runs[0].latency_p50)   # another stream, as documented
    assert abs(single.accuracy.mean() - runs[0].accuracy.mean()) < 0.05


def test_population_questions_are_stratified_and_estimate_what_random_questions_do(tmp_path):
    """The report's accuracy on new questions uses stratified questions (one difficulty per quantile
    stratum, the testable share exact); a split's prediction keeps random ones, drawn as before."""
    from scipy.special import ndtr

    from archsearch.bayes.evidence import new_questions

    b, testable = new_questions(np.random.default_rng(5), 3, 200, 0.68, population=True)
    for row in b:
        np.testing.assert_array_equal(np.sort(np.floor(ndtr(row) * 200)), np.arange(200))
    assert testable.sum() == 136
    b, testable = new_questions(np.random.default_rng(5), 3, 200, 0.68, population=False)
    rng = np.random.default_rng(5)
    np.testing.assert_array_equal(b, rng.normal(size=(3, 200)))
    np.testing.assert_array_equal(testable, rng.random(200) < 0.68)

    specs, plans, evidence = _partly_known(tmp_path, lambda spec: _layers(spec)[0] == ("generate", "strong", 2))
    evidence.posterior = _fixed(evidence, 0.3)
    plans = plans[::8]
    drawn = evidence.on_new(plans, 20000, np.random.default_rng(1), draws=np.arange(4))
    stratified = evidence.on_new(plans, 20000, np.random.default_rng(2), draws=np.arange(4), population=True)
    gap = stratified.accuracy.mean(axis=0) - drawn.accuracy.mean(axis=0)   # 13 pipelines
    assert np.abs(gap).max() < 0.015 and abs(gap.mean()) < 0.004   # two seeds of drawn ones: 0.008 apart at most
    split = evidence.on_split(plans[0], 41, np.random.default_rng(4), replicates=3)   # a final split's prediction
    D = evidence.posterior.draws
    assert split.shape == (3 * D,) and np.allclose(split * 41, np.round(split * 41))   # whole questions of 41
    assert not np.array_equal(split[:D], split[D:2 * D])   # each replicate a split of its own
