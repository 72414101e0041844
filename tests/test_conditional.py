"""The conditioned predictor: replaying known samples must give exactly what the real pipelines
score, and drawn samples must follow the cell posterior."""

import asyncio
import shutil
from pathlib import Path

import numpy as np
import pytest

from archsearch.bayes.conditional import Judged, KnownSamples, simulate_scores
from archsearch.bayes.model import Posterior
from archsearch.bayes.observe import Observer, features, pipeline_shape
from archsearch.bayes.predict import FALLBACK, KEEP_ALL, PipelineFeatures
from archsearch.errors import LLMCallError
from archsearch.evaluate import aevaluate
from archsearch.llm import CallCache, LLMClient
from archsearch.pipeline import Pipeline
from archsearch.space import SearchSpace, enumerate_space
from archsearch.tasks import Task

ROOT = Path(__file__).resolve().parent.parent


def _posterior(p: float, questions: int = 1, generators: int = 1) -> Posterior:
    logit = np.log(p / (1 - p))
    return Posterior(theta=np.full((1, generators), logit), b=np.zeros((1, questions)), tau=np.full((1, 1), 9.0),
                     gamma=np.full((1, 1), -9.0), lam=np.zeros((1, 1)), sigma_b=np.zeros(1),
                     phi=np.full((1, generators), 1e12), cell_n=np.zeros((generators, questions)),
                     cell_y=np.zeros((generators, questions)), method="fixed", seconds=0.0)


def _features(n, tested, policy, vote, best=False):
    return PipelineFeatures(g=np.array([0]), n=np.array([n]), v=np.array([0 if tested else -1]),
                            policy=np.array([policy]), vote=np.array([vote]), best=np.array([best]))


def test_known_samples_are_replayed_by_the_pipeline_rules():
    # sample 0 wrong but passes the visible tests; 1 and 2 right, same answer; 3 right, other answer
    cell = [Judged(False, 1.0, "a"), Judged(True, 0.5, "b"), Judged(True, 0.5, "b"), Judged(True, 1.0, "c")]
    known = KnownSamples.from_judged([[cell]], np.array([True]))
    score = lambda *f: simulate_scores(_posterior(0.5), _features(*f), known, np.random.default_rng(0))[0, 0]  # noqa: E731
    assert score(4, False, KEEP_ALL, False) == 0.0      # first sample
    assert score(4, False, KEEP_ALL, True) == 1.0       # "b" has two votes
    assert score(4, True, KEEP_ALL, False) == 0.0       # first survivor of the tests is the false positive
    assert score(4, True, KEEP_ALL, True) == 0.0        # survivors "a", "c" tie: the earliest wins
    assert score(3, True, FALLBACK, False) == 0.0
    assert score(3, False, KEEP_ALL, True) == 1.0
    untestable = KnownSamples.from_judged([[cell]], np.array([False]))
    assert simulate_scores(_posterior(0.5), _features(4, True, KEEP_ALL, True), untestable,
                           np.random.default_rng(0))[0, 0] == 1.0  # no tests: the layer keeps all, "b" wins


def test_unknown_samples_follow_the_cell_accuracy():
    known = KnownSamples.from_judged([[[] for _ in range(400)]], np.ones(400, bool))
    got = simulate_scores(_posterior(0.3, questions=400), _features(1, False, KEEP_ALL, False), known,
                          np.random.default_rng(1))[0, 0]
    assert got == pytest.approx(0.3, abs=0.05)
    assert known.determined(_features(1, False, KEEP_ALL, False)).tolist() == [False]


class _NoCalls:
    async def complete(self, model_id, messages, params, sample_index=0):
        raise LLMCallError(model_id, "not in the shipped pool")


def test_replay_equals_the_real_pipelines_on_the_shipped_pool(tmp_path):
    """Every pipeline of the sampling space, run for real on the recorded HumanEval pool (cache only,
    sandboxed tests), scores exactly what the simulator gives when every sample is known."""
    exp = ROOT / "experiments" / "humaneval-local"
    shutil.copy(exp / "calls.sqlite", tmp_path / "calls.sqlite")
    task = Task(exp / "task.yaml")
    records = task.split("search")
    cache = CallCache(f"sqlite:///{tmp_path / 'calls.sqlite'}")
    memo: dict = {}
    client = LLMClient(_NoCalls(), cache, max_retries=0)
    specs = [spec for _, spec in enumerate_space(SearchSpace(ROOT / "spaces" / "sampling.yaml"), task)]

    async def measure():
        try:
            return [(await aevaluate(Pipeline(s, client, sandbox_memo=memo), task, records, "search", concurrency=40))
                    for s in specs]
        finally:
            await client.release_loop()

    reports = asyncio.run(measure())
    shapes = [pipeline_shape(s) for s in specs]
    generators = list({s.generator.key: s.generator for s in shapes}.values())
    observer = Observer(task, records, cache, memo)
    known = observer.known(generators)
    feats = features(shapes, generators)
    assert known.determined(feats).all()
    replayed = simulate_scores(_posterior(0.5, len(records), len(generators)), feats, known, np.random.default_rng(0))[0]
    measured = np.array([r.measured().accuracy for r in reports])
    assert len(specs) == 105 and not any(r.failures for r in reports)
    np.testing.assert_array_equal(replayed, measured)
