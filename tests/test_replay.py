"""The surrogate's predictive: replaying known calls must give exactly what the real pipelines
score and spend, and unknown calls must follow the model."""

import asyncio
import shutil
from pathlib import Path

import numpy as np
import pytest

from archsearch.bayes.costs import CostModel
from archsearch.bayes.evidence import Evidence
from archsearch.bayes.known import Judged, KnownArrays, known_arrays
from archsearch.bayes.model import Posterior
from archsearch.bayes.observe import CallObs, Known, Sample
from archsearch.bayes.plan import Generator, Plan, plan_of
from archsearch.bayes.replay import Context
from archsearch.bayes.simulator import simulate
from archsearch.errors import LLMCallError
from archsearch.evaluate import aevaluate
from archsearch.llm import CallCache, LLMClient
from archsearch.llm.models import ModelSpec
from archsearch.pipeline import Pipeline
from archsearch.space import SearchSpace, enumerate_space
from archsearch.tasks import Task
from archsearch.techniques.generate import GenerateParams

ROOT = Path(__file__).resolve().parent.parent
GEN = Generator(ModelSpec(id="fake/m"), GenerateParams(model="m", n=8, temperature=0.8))


def _posterior(p: float, questions: int, generators: int = 1) -> Posterior:
    logit, G = np.log(p / (1 - p)), generators
    return Posterior(theta=np.full((1, G), logit), b=np.zeros((1, questions)), tau=np.full((1, 1, G), 9.0),
                     gamma=np.full((1, 1, G), -9.0), lam=np.zeros((1, 1)), sigma_b=np.zeros(1),
                     phi=np.full((1, G), 1e12), cell_n=np.zeros((G, questions)), cell_y=np.zeros((G, questions)),
                     method="fixed", seconds=0.0)


def _known(cells: list[list[Judged]]) -> Known:
    call = CallObs("fake/m", "generate", 1, 10, 10, 1.0)
    samples = [[[Sample(f"s{q}-{i}", j, call) for i, j in enumerate(cell)] for q, cell in enumerate(cells)]]
    return Known([GEN], {"verify": [], "rank": [], "critique": [], "fuse": []}, samples, np.ones(len(cells), bool))


def _run(known: Known, plans: list[Plan], p: float = 0.5):
    arrays = known_arrays(known)
    ctx = Context(arrays, known.generators, known.judges, 1, {}, {}, {})
    return simulate(_posterior(p, arrays.questions), plans, ctx, CostModel(known.calls()), np.random.default_rng(0))


def _plan(n, test=None, vote=False, stop="never"):
    from archsearch.bayes.plan import Check

    checks = () if test is None else (Check(None, test),)
    return Plan(((GEN, n),), checks, vote, False, stop)


def test_known_samples_are_replayed_by_the_pipeline_rules():
    from archsearch.bayes.predict import FALLBACK, KEEP_ALL

    # sample 0 wrong but passes the visible tests; 1 and 2 right, same answer; 3 right, another answer
    cell = [Judged(False, 1.0, "a"), Judged(True, 0.5, "b"), Judged(True, 0.5, "b"), Judged(True, 1.0, "c")]
    known = _known([cell])
    plans = [_plan(4), _plan(4, vote=True), _plan(4, KEEP_ALL), _plan(4, KEEP_ALL, vote=True), _plan(3, FALLBACK),
             _plan(3, vote=True), _plan(4, KEEP_ALL, stop="accepted")]
    sim = _run(known, plans)
    assert sim.determined.all()
    assert sim.accuracy[0].tolist() == [0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    assert sim.calls[0].tolist() == [4, 4, 4, 4, 3, 3, 1]        # stop at the first accepted: one sample
    assert sim.latency_p50[0].tolist() == [1, 1, 1, 1, 1, 1, 1]


def test_settled_over_the_accepted_samples_is_replayed():
    from archsearch.bayes.plan import Check
    from archsearch.bayes.predict import KEEP_ALL

    # accepted (all visible tests pass): 0 (wrong, "a"), 2, 3, 4 (right, "c"); 1 and 5 fail them
    cell = [Judged(False, 1.0, "a"), Judged(True, 0.0, "c"), Judged(True, 1.0, "c"), Judged(True, 1.0, "c"),
            Judged(True, 1.0, "c"), Judged(False, 0.5, "d")]
    nothing = [Judged(i == 3, 0.5, str(i)) for i in range(6)]           # nothing accepted: all 6, then the vote
    known = _known([cell, nothing])
    settled = Plan(((GEN, 6),), (Check(None, KEEP_ALL),), True, False, "settled", 0.8)
    sim = _run(known, [settled, _plan(6, KEEP_ALL, vote=True), _plan(6, KEEP_ALL, vote=True, stop="accepted")])
    assert sim.determined.all()
    # a, c, c: P(lead) = 0.69; the 5th sample makes it c 3 : a 1, P = 0.81 >= 0.8 -> 5 samples, c wins
    assert sim.accuracy[0].tolist() == [0.5, 0.5, 0.0]
    assert sim.calls[0].tolist() == [(5 + 6) / 2, 6.0, (1 + 6) / 2]


def test_unknown_samples_follow_the_cell_accuracy():
    known = _known([[] for _ in range(400)])
    sim = _run(known, [_plan(1)], p=0.3)
    assert sim.accuracy[0, 0] == pytest.approx(0.3, abs=0.05) and not sim.determined[0]


def test_fresh_questions_know_nothing():
    arrays = known_arrays(_known([[Judged(True, 1.0, "a")]]))
    fresh = KnownArrays.fresh(arrays, 7, np.ones(7, bool))
    assert fresh.m.shape == (1, 7) and fresh.m.sum() == 0


class _NoCalls:
    async def complete(self, model_id, messages, params, sample_index=0):
        raise LLMCallError(model_id, "not in the shipped pool")


def _real(exp: Path, space: Path, tmp_path: Path):
    shutil.copy(Path(Task(exp / "task.yaml").cache_url.removeprefix("sqlite:///")), tmp_path / "calls.sqlite")
    task = Task(exp / "task.yaml")
    records = task.split("search")
    cache = CallCache(f"sqlite:///{tmp_path / 'calls.sqlite'}")
    memo: dict = {}
    client = LLMClient(_NoCalls(), cache, max_retries=0)
    specs = [spec for _, spec in enumerate_space(SearchSpace(space), task)]

    async def measure():
        try:
            return [(await aevaluate(Pipeline(s, client, sandbox_memo=memo), task, records, "search", concurrency=40))
                    for s in specs]
        finally:
            await client.release_loop()

    return task, records, cache, memo, specs, asyncio.run(measure())


def test_replay_equals_the_real_pipelines_on_the_shipped_pool(tmp_path):
    """Every pipeline of the sampling space -- fixed n and stopping early -- run for real on the
    recorded HumanEval pool (cache only, sandboxed tests), scores and calls exactly what the
    simulator gives when every call is known; latency within the test layer's sandbox time."""
    task, records, cache, memo, specs, reports = _real(ROOT / "experiments/humaneval-local", ROOT / "spaces/sampling.yaml",
                                                       tmp_path)
    plans = [plan_of(s) for s in specs]
    evidence = Evidence(task, records, cache, memo, plans)
    evidence.refresh()
    sim = evidence.on_search(plans, np.random.default_rng(0), np.array([0]))
    assert len(specs) == 1260 and not any(r.failures for r in reports)
    assert sim.determined.all() and sum(p.stop != "never" for p in plans) >= 60
    np.testing.assert_array_equal(sim.accuracy[0], [r.measured().accuracy for r in reports])
    np.testing.assert_allclose(sim.calls[0], [r.measured().calls_per_question for r in reports])
    # the real runs also spend the test layer's sandbox seconds (the first run of a program is not memoised)
    np.testing.assert_allclose(sim.latency_p50[0], [r.measured().latency_p50_s for r in reports], rtol=0.1)


def _judge(role, params_cls, **kw):
    from archsearch.bayes.plan import Judge

    return Judge(role, ModelSpec(id=f"fake/{role}"), params_cls(model="j", **kw))


def test_llm_judges_and_ensembles_are_replayed():
    from archsearch.bayes.plan import Check
    from archsearch.bayes.predict import FALLBACK, KEEP_ALL
    from archsearch.techniques.verify import VerifyParams

    other = Generator(ModelSpec(id="fake/other"), GenerateParams(model="o", n=2, temperature=0.8))
    judge = _judge("verify", VerifyParams)
    call = CallObs("fake/m", "generate", 1, 10, 10, 1.0)
    right, wrong = Judged(True, None, "r"), Judged(False, None, "w")
    samples = [[[Sample("a", wrong, call), Sample("b", right, call)]],      # generator 0 on the one question
               [[Sample("c", right, call), Sample("d", wrong, call)]]]      # generator 1
    verdict = CallObs("fake/verify", "verify", 1, 5, 5, 2.0)
    known = Known([GEN, other], {"verify": [judge], "rank": [], "critique": [], "fuse": []}, samples, np.zeros(1, bool),
                  verdicts={(0, 0, 0, 0): (True, verdict), (0, 0, 0, 1): (False, verdict),
                            (0, 1, 0, 0): (True, verdict), (0, 1, 0, 1): (False, verdict)})
    arrays = known_arrays(known)
    ctx = Context(arrays, known.generators, known.judges, 0, {}, {}, {})
    plans = [Plan(((GEN, 2), (other, 2)), (Check(judge, KEEP_ALL),), vote=False),   # accepted: a (wrong), c
             Plan(((other, 2), (GEN, 2)), (Check(judge, KEEP_ALL),), vote=False),   # order matters: c first
             Plan(((GEN, 2), (other, 2)), (), vote=True),                           # votes: r twice, w twice: a first
             Plan(((GEN, 1),), (Check(judge, FALLBACK),), vote=False)]
    sim = simulate(_posterior(0.5, 1, 2), plans, ctx, CostModel(known.calls()), np.random.default_rng(0))
    assert sim.determined.all()
    assert sim.accuracy[0].tolist() == [0.0, 1.0, 0.0, 0.0]
    assert sim.calls[0].tolist() == [8.0, 8.0, 4.0, 2.0]            # 4 samples + 4 verdicts; the last: 1 + 1
    assert sim.latency_p50[0].tolist() == [3.0, 3.0, 1.0, 3.0]       # one generate step, then one judging step


def test_settled_over_what_an_llm_judge_accepted_pays_only_the_drawn_verdicts():
    from archsearch.bayes.plan import Check
    from archsearch.bayes.predict import KEEP_ALL
    from archsearch.techniques.verify import VerifyParams

    judge = _judge("verify", VerifyParams)
    call, verdict = CallObs("fake/m", "generate", 1, 10, 10, 1.0), CallObs("fake/verify", "verify", 1, 5, 5, 2.0)
    keys = ["a", "b", "b", "c"]                      # the judge accepts 1 and 2 (both "b", right): settled at 3
    samples = [[[Sample(str(i), Judged(k == "b", None, k), call) for i, k in enumerate(keys)]]]
    known = Known([GEN], {"verify": [judge], "rank": [], "critique": [], "fuse": []}, samples, np.zeros(1, bool),
                  verdicts={(0, 0, 0, i): (k == "b", verdict) for i, k in enumerate(keys)})
    arrays = known_arrays(known)
    ctx = Context(arrays, known.generators, known.judges, 0, {}, {}, {})
    plans = [Plan(((GEN, 4),), (Check(judge, KEEP_ALL),), True, False, "settled", 0.8),
             Plan(((GEN, 4),), (Check(judge, KEEP_ALL),), True, False, "never")]
    sim = simulate(_posterior(0.5, 1), plans, ctx, CostModel(known.calls()), np.random.default_rng(0))
    assert sim.determined.all() and sim.accuracy[0].tolist() == [1.0, 1.0]
    assert sim.calls[0].tolist() == [6.0, 8.0]                   # 3 samples + their 3 verdicts; all 4 + 4
    assert sim.latency_p50[0].tolist() == [3 * 1.0 + 3 * 2.0, 1.0 + 2.0]  # one after another; all at once


def test_rank_and_fuse_are_replayed_where_known_and_drawn_where_not():
    from archsearch.bayes.observe import fusion_inputs_key
    from archsearch.techniques.fuse import FuseParams
    from archsearch.techniques.rank import RankParams

    call = CallObs("fake/m", "generate", 1, 10, 10, 1.0)
    right, wrong = Judged(True, None, "r"), Judged(False, None, "w")
    ranker, fuser = _judge("rank", RankParams), _judge("fuse", FuseParams)
    samples = [[[Sample(str(i), right if i == 2 else wrong, call) for i in range(4)] for _ in range(2)]]
    rank_plan = Plan(((GEN, 4),), rank=ranker, keep=1)
    fuse_plan = Plan(((GEN, 4),), rank=ranker, keep=2, fuse=fuser)
    known = Known([GEN], {"verify": [], "rank": [ranker], "critique": [], "fuse": [fuser]}, samples, np.zeros(2, bool),
                  ranks={(0, 0, 4, 0): ((2, 0, 1, 3), CallObs("fake/rank", "rank", 4, 40, 4, 3.0))},
                  fused={(0, fusion_inputs_key(fuse_plan), 0): (True, 1, CallObs("fake/fuse", "fuse", 2, 30, 9, 4.0))})
    arrays = known_arrays(known)
    ctx = Context(arrays, known.generators, known.judges, 0, known.ranks, {}, known.fused)
    post = _posterior(0.5, 2)
    post.rank_beta, post.rank_alpha = np.full((1, 1), 50.0), np.zeros((1, 1))      # the ranker always finds it
    post.fuse = {"a": np.full((1, 1), -50.0), "b": np.zeros((1, 1)), "d": np.zeros((1, 1)), "e": np.zeros((1, 1))}
    sim = simulate(post, [rank_plan, fuse_plan], ctx, CostModel(known.calls()), np.random.default_rng(0))
    # question 0 replays the recorded ranking (2 first) and fusion (right); question 1's are drawn:
    # the ranker finds the right sample, the fuser (a = -50) gets it wrong
    assert sim.accuracy[0].tolist() == [1.0, 0.5]
    assert sim.calls[0].tolist() == [5.0, 6.0] and not sim.determined.any()
