"""The surrogate's science: closed forms, the pipeline predictor against them and against Monte
Carlo, and parameter recovery on simulated data."""

import closed_forms as cf
import numpy as np
import pytest
from predict import ABSTAIN, KEEP_ALL, PipelineFeatures, predict_accuracy

from archsearch.bayes.model import Posterior

logit = lambda x: float(np.log(x / (1 - x)))  # noqa: E731


def test_design_targets_within_0_01():
    assert cf.coverage_beta(0.3, 2, 100) == pytest.approx(0.708, abs=0.01)
    assert cf.coverage_beta(0.3, 2, 10_000) == pytest.approx(0.926, abs=0.01)
    ceiling, single = cf.mixture_ceiling([0.87, 0.13], [0.58, 0.42], tpr=1.0, soundness=0.75)
    assert ceiling == pytest.approx(0.716, abs=0.01) and single == pytest.approx(0.559, abs=0.01)
    f = lambda k: cf.voting_mixture([0.6, 0.4], [0.85, 0.35], k)  # noqa: E731
    assert f(1) == pytest.approx(0.650, abs=0.01)
    assert f(5) == pytest.approx(0.678, abs=0.01)
    assert f(10_001) == pytest.approx(0.600, abs=0.01)
    assert max(range(1, 99, 2), key=f) == 5  # non-monotone: voting peaks, then falls
    assert cf.pass_at_k(10, 3, 1) == pytest.approx(0.3) and cf.pass_at_k(10, 3, 8) == 1.0


def _posterior(p, c=0.9, f=0.2, questions=1):
    one = lambda v: np.full((1, 1), v)  # noqa: E731
    return Posterior(theta=one(logit(p)), b=np.zeros((1, questions)), tau=one(logit(c)), gamma=one(logit(f)),
                     lam=np.zeros((1, 1)), sigma_b=np.zeros(1), phi=np.full((1, 1), 1e12),  # p fixed: no cell spread
                     cell_n=np.zeros((1, questions)), cell_y=np.zeros((1, questions)), method="fixed", seconds=0.0)


def _feat(n, tested, policy, vote):
    return PipelineFeatures(g=np.array([0]), n=np.array([n]), v=np.array([0 if tested else -1]),
                            policy=np.array([policy]), vote=np.array([vote]))


@pytest.mark.parametrize("k", [1, 3, 10, 200])
def test_predictor_matches_first_accepted_of_k(k):
    got = predict_accuracy(_posterior(0.5), _feat(k, True, ABSTAIN, False))[0, 0]
    assert got == pytest.approx(cf.first_accepted_of_k(0.5, 0.9, 0.2, k), abs=1e-4)


def test_predictor_reaches_the_flaws_ceiling():
    mix = [(0.87, 0.58), (0.13, 0.42)]
    got = sum(w * predict_accuracy(_posterior(r, c=0.999999, f=0.25), _feat(5000, True, ABSTAIN, False))[0, 0] for r, w in mix)
    assert got == pytest.approx(0.716, abs=0.01)


def test_predictor_vote_and_test_vote_match_monte_carlo():
    rng = np.random.default_rng(0)
    p, c, f, n, R = 0.4, 0.85, 0.3, 5, 300_000
    correct = rng.random((R, n)) < p
    accepted = np.where(correct, rng.random((R, n)) < c, rng.random((R, n)) < f)

    def vote(corr):  # wrong answers distinct, ties to the earliest
        k = corr.sum(1)
        return (k >= 2) | ((k == 1) & corr[:, 0])

    mc_vote = vote(correct).mean()
    first = np.argmax(accepted, 1)
    xc = (correct & accepted).sum(1)
    any_acc = accepted.any(1)
    mc_tv = np.where(any_acc, (xc >= 2) | ((xc == 1) & correct[np.arange(R), first]), vote(correct)).mean()
    assert predict_accuracy(_posterior(p, c, f), _feat(n, False, KEEP_ALL, True))[0, 0] == pytest.approx(mc_vote, abs=0.005)
    assert predict_accuracy(_posterior(p, c, f), _feat(n, True, KEEP_ALL, True))[0, 0] == pytest.approx(mc_tv, abs=0.005)


def test_optimal_samples_trade_false_positives():
    k_cheap, _ = cf.optimal_samples(0.3, 0.9, 0.2, fp_cost=0.0)
    k_dear, _ = cf.optimal_samples(0.3, 0.9, 0.2, fp_cost=5.0)
    assert k_cheap > k_dear


@pytest.mark.slow
def test_recovery_on_simulated_data_20_seeds():
    """In a process of its own: NumPyro 0.22 compiles MCMC's sampling loop again on every run (its
    jitted loop body is a new object each time), and each compiled loop keeps about 1,300 memory maps
    for the life of the process. In the test process, these 20 fits and the next test's NUTS fit
    passed Linux's default limit of 65,530 maps and XLA aborted inside a compile."""
    import json

    from conftest import run_python

    out = run_python("bayes/calibration_sbc.py", "--seeds", "20", timeout=3600)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout)
    assert 0.85 <= result["coverage_90_pooled"] <= 0.95, result
    # model-written tests are one of the verifiers (a cell's right programs counted once): 80 checks each
    assert result["coverage_90_tpr_written"] >= 0.8 and result["coverage_90_fpr_written"] >= 0.8, result


def test_an_unbought_writer_of_tests_is_priced_from_the_tests_that_ran():
    """A writer of tests nobody has bought shares its prior mean with the tests that did run (the
    task's visible tests: wrong programs rarely pass), not with LLM judges (lenient here)."""
    import sys
    from dataclasses import replace
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bayes"))
    from synthetic import draw_truth, plain, simulate

    from archsearch.bayes.fit import Surrogate
    from archsearch.bayes.model import Shapes

    rng = np.random.default_rng(3)
    truth = draw_truth(rng, questions=40, verifiers=3, structure=plain(2))
    truth.tau[:] = np.array([[4.0], [0.5], [4.0]])      # visible tests, a judge, a writer
    truth.gamma[:] = np.array([[-4.0], [0.5], [-4.0]])
    truth.lam[:] = 0.0
    obs = simulate(truth, rng, writers=1)
    obs.seen[:, 2] = False                               # nothing the writer wrote was bought
    obs = replace(obs, verifier_runs_tests=np.array([1, 0, 1]))
    surrogate = Surrogate(Shapes(verifiers=4, generators=2), seed=0)
    shared = surrogate.fit(obs, "svi")
    as_judges = surrogate.fit(replace(obs, verifier_runs_tests=np.array([0, 0, 0])), "svi")
    # the writer's FPR intercept and TPR logit (unobserved: their prior) follow the visible tests'
    assert shared.gamma[:, 2].mean() < as_judges.gamma[:, 2].mean() - 0.5, (shared.gamma[:, 2].mean(),
                                                                            as_judges.gamma[:, 2].mean())
    assert shared.tau[:, 2].mean() > as_judges.tau[:, 2].mean() + 0.4, (shared.tau[:, 2].mean(), as_judges.tau[:, 2].mean())


def test_costs_of_a_role_never_seen_stay_within_what_one_call_can_take():
    """Tokens drawn, then latency given them: for a role with no call seen the chain's tails reached
    1e15 s; a call cannot outlast the longest timeout nor outgrow a context."""
    from archsearch.bayes.costs import CAP, CostModel
    from archsearch.bayes.objects import CallObs

    calls = [CallObs("m", "generate", 1, 200 + i, 150 + i, 2.0 + 0.01 * i, created=float(i)) for i in range(30)]
    drawn = CostModel(calls).draw(np.random.default_rng(0), 4000).sample("m", "test", 1, (4000, 8))
    assert drawn[0].max() <= CAP["tokens_in"] and drawn[1].max() <= CAP["tokens_out"]
    assert drawn[2].max() <= CAP["latency_s"]
    # centred on the same model's calls in its other role
    assert 100 < np.median(drawn[1]) < 250 and 1.0 < np.median(drawn[2]) < 4.0


def test_a_written_test_nobody_passes_is_set_aside_together_but_counts_alone():
    """The two rows of a writer: judged with others, a written test no candidate passes is not
    counted (suspected wrong); judged alone -- each sample of a generator that stops early -- it is."""
    from archsearch.bayes.written import counted_verdicts

    # one visible test (bit 0), two written ones (bits 1, 2); written test 2 has a wrong expected value
    mask, checked = np.array([0b011, 0b011, 0b001]), np.ones(3, bool)   # two right programs, one wrong
    together, share = counted_verdicts(mask, checked, np.ones(3, bool), np.array(3), np.array(2))
    alone, _ = counted_verdicts(mask, checked, np.zeros(3, bool), np.array(3), np.array(2))
    assert together.tolist() == [True, True, False] and share.tolist() == [1.0, 1.0, 0.5]
    assert alone.tolist() == [False, False, False]


def test_the_compiled_svi_step_is_the_same_in_every_process():
    """JAX's compilation cache on disk serves a new search only if the SVI code it compiles is the
    same program; NumPyro's Trace_ELBO summed its terms in a hash-seed-dependent order, so every
    process compiled anew. Lowered under two hash seeds, the fit's start, steps and draws must each
    be one text."""
    import hashlib
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = """
import functools, hashlib
import jax, numpy as np
from synthetic import draw_truth, simulate
from archsearch.bayes.svi import starting_state, svi_functions
from archsearch.bayes.model import Shapes, model
rng = np.random.default_rng(0)
obs = simulate(draw_truth(rng, questions=12), rng)
shapes = Shapes.fitting(obs, Shapes())
data = obs.padded(shapes)
key = jax.random.PRNGKey(0)
start, steps, finish = svi_functions(shapes, 8)
state = jax.eval_shape(lambda: starting_state(*start(key, data), None))
texts = [start.lower(key, data).as_text(), steps.lower(key, state, data).as_text(), finish.lower(key, state, data).as_text()]
print(hashlib.sha256("".join(texts).encode()).hexdigest())
"""
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root / "bayes"), str(root)]), "JAX_PLATFORMS": "cpu"}
    texts = set()
    for hash_seed in ("1", "2"):
        done = subprocess.run([sys.executable, "-c", script], env={**env, "PYTHONHASHSEED": hash_seed},
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        texts.add(done.stdout.strip())
    assert len(texts) == 1 and len(next(iter(texts))) == len(hashlib.sha256().hexdigest())


def test_the_compiled_start_of_svi_is_numpyros_eager_one_bit_for_bit():
    """The fit's start runs compiled (set up eagerly, the guide spent 5 s of every search compiling
    hundreds of small operations); its state and its posterior draws must be exactly those of
    NumPyro's eager ``SVI.init`` and AutoNormal, so that fits and the figures they made are unchanged."""
    import functools
    import sys
    from pathlib import Path

    import jax
    import numpyro
    from numpyro.infer import SVI
    from numpyro.infer.autoguide import AutoNormal

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bayes"))
    from synthetic import draw_truth, simulate

    from archsearch.bayes.model import Shapes, model
    from archsearch.bayes.svi import FixedOrderELBO, starting_state, svi_functions

    rng = np.random.default_rng(0)
    obs = simulate(draw_truth(rng, questions=12), rng)
    shapes = Shapes.fitting(obs, Shapes())
    data = obs.padded(shapes)
    kernel = functools.partial(model, shapes=shapes)
    key = jax.random.PRNGKey(0)
    start, _, finish = svi_functions(shapes, 8)
    compiled = starting_state(*start(key, data), None)
    guide = AutoNormal(kernel)
    svi = SVI(kernel, guide, numpyro.optim.Adam(0.02), FixedOrderELBO())
    eager = svi.init(key, **data)

    def same(a, b):
        leaves_a, leaves_b = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
        return len(leaves_a) == len(leaves_b) and all(np.array_equal(x, y) for x, y in zip(leaves_a, leaves_b))

    assert jax.tree_util.tree_structure(compiled) == jax.tree_util.tree_structure(eager)
    assert same(compiled, eager)
    params, draws = finish(key, compiled, data)
    assert same(params, svi.get_params(compiled))
    latent = jax.jit(lambda p, d: guide.sample_posterior(jax.random.fold_in(key, 1), p, sample_shape=(8,), **d))(params, data)
    assert all(np.array_equal(draws[k], latent[k]) for k in latent)
    # a warm start from the last solution goes through the same eager mapping of the scales
    assert same(starting_state(*start(key, data), params), svi.init(key, **data, init_params=params))


def test_svi_read_already_traced_from_disk_fits_bit_for_bit(tmp_path):
    """A search's first fit runs SVI's functions exported (``exported.py``), so that the next process
    reads them instead of tracing the model again: the same state, losses and draws as the traced
    functions."""
    import sys
    from pathlib import Path

    import jax

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bayes"))
    from synthetic import draw_truth, simulate

    from archsearch.bayes import exported
    from archsearch.bayes.model import Shapes
    from archsearch.bayes.svi import starting_state, stored_svi_functions, svi_functions

    rng = np.random.default_rng(0)
    obs = simulate(draw_truth(rng, questions=12), rng)
    shapes = Shapes.fitting(obs, Shapes())
    data = obs.padded(shapes)
    key = jax.random.PRNGKey(0)

    def fit(functions):
        start, steps, finish = functions
        state = starting_state(*start(key, data), None)
        state, losses = steps(key, state, data)
        state, more = steps(key, state, data)
        params, draws = finish(key, state, data)
        return [np.asarray(x) for x in jax.tree_util.tree_leaves((state, losses, more, params, draws))]

    traced = fit(svi_functions(shapes, 8))
    stored = fit(stored_svi_functions(shapes, 8, str(tmp_path)))
    stored_svi_functions.cache_clear()
    assert len(stored) == len(traced) and all(x.dtype == y.dtype and np.array_equal(x, y) for x, y in zip(stored, traced))
    entries = sorted((tmp_path / exported.FOLDER).glob("*.bin"))
    assert [e.name.split("-")[1] for e in entries] == ["finish", "start", "steps"]


def test_a_stored_function_is_read_back_rewritten_when_damaged_and_optional(tmp_path, monkeypatch):
    """``exported.stored``: a second process reads the entry without tracing; a damaged entry is traced
    and written again; a folder it cannot write to costs only the next process's tracing."""
    import jax

    from archsearch.bayes import exported

    fn, x = jax.jit(lambda a, b: {"sum": a * 2 + b["one"]}), (np.arange(4.0), {"one": np.ones(4)})
    want = np.arange(4.0) * 2 + 1
    source = (exported.__file__,)
    assert np.array_equal(exported.stored(tmp_path, "f", fn, x, source).call(*x)["sum"], want)
    (entry,) = (tmp_path / exported.FOLDER).glob("f-*.bin")
    with monkeypatch.context() as m:
        m.setattr(exported.export, "export", lambda *a, **k: pytest.fail("traced again although stored"))
        assert np.array_equal(exported.stored(tmp_path, "f", fn, x, source).call(*x)["sum"], want)
    entry.write_bytes(b"not an export")
    assert np.array_equal(exported.stored(tmp_path, "f", fn, x, source).call(*x)["sum"], want)
    assert entry.read_bytes() != b"not an export"
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the folder should be")
    assert np.array_equal(exported.stored(blocked, "f", fn, x, source).call(*x)["sum"], want)
    # another shape is another entry
    y = (np.arange(3.0), {"one": np.ones(3)})
    assert np.array_equal(exported.stored(tmp_path, "f", fn, y, source).call(*y)["sum"], np.arange(3.0) * 2 + 1)
    assert len(list((tmp_path / exported.FOLDER).glob("f-*.bin"))) == 2


def test_a_live_search_prices_new_calls_in_the_sitting_it_is_in():
    """A model's calls from a fast sitting a day ago and a slow one still going on (four times the
    latency; its judge ran only in the fast one): a live search's new calls, the judge's too, are
    priced near the slow sitting's load; a report's new questions (``fresh``: a sitting not yet
    begun) and a search whose latest call is hours old draw a fresh sitting, between the two."""
    from archsearch.bayes.costs import CostModel
    from archsearch.bayes.objects import CallObs

    rng = np.random.default_rng(0)
    day = 86_400.0
    calls = []
    for start, load, roles in ((day, 1.0, ("generate", "verify")), (2 * day, 4.0, ("generate",))):
        for role in roles:
            for i in range(40):
                latency = load * (2.0 if role == "generate" else 0.5) * float(np.exp(rng.normal(0.0, 0.1)))
                calls.append(CallObs("m", role, 1, 200, 100, latency, created=start + 10.0 * i))
    latest = max(c.created for c in calls)

    def median_latency(costs: CostModel, role: str) -> float:
        return float(np.median(costs.draw(np.random.default_rng(1), 4000).sample("m", role, 1, (4000,))[2]))

    live = CostModel(calls, now=latest + 60.0)
    assert median_latency(live, "generate") == pytest.approx(8.0, rel=0.15)
    assert median_latency(live, "verify") == pytest.approx(2.0, rel=0.15)
    for fresh in (live.fresh(), CostModel(calls, now=latest + 3 * 3600.0), CostModel(calls)):
        assert 2.5 < median_latency(fresh, "generate") < 6.5
        assert median_latency(fresh, "verify") < 1.0     # the judge's own (fast) sittings


def test_sittings_split_at_long_gaps_and_every_ten_minutes():
    from archsearch.bayes.costs import SITTING_MAX_S, sittings

    created = np.array([5000.0, 0.0, 10.0, 500.0, 590.0, 650.0, 1200.0, 1260.0, 9000.0])
    assert SITTING_MAX_S == 600.0
    # 0..590 one sitting; 650 starts the next (650 - 0 > 600), 1200 still in it, 1260 past it;
    # 5000 and 9000 each after a gap of more than half an hour
    assert sittings(created).tolist() == [3, 0, 0, 0, 0, 1, 1, 2, 4]


def test_load_that_drifts_within_hours_of_recording_is_learnt_as_the_spread_of_sittings():
    """Two hours of calls with no pause, the machine four times slower every other twenty minutes
    (another job sharing its cores): the ten-minute sittings see the swings, so a fresh sitting's
    spread is learnt (about log 4 / 2 = 0.7) rather than left at its prior (0.4)."""
    from archsearch.bayes.costs import CostModel
    from archsearch.bayes.objects import CallObs

    rng = np.random.default_rng(0)
    calls = [CallObs("m", "generate", 1, 200, 100, (4.0 if (t // 1200) % 2 else 1.0) * float(np.exp(rng.normal(0.0, 0.1))),
                     created=1e9 + t) for t in np.arange(0.0, 7200.0, 20.0)]
    spread = CostModel(calls).session_sd[("m", "generate")]
    assert 0.55 < spread < 0.9


def test_hypervolume_gains_are_exact_and_averaged_rows_measure_alike_candidates_once():
    from archsearch.bayes.hypervolume import gains, hypervolume, mean_gains

    # two points in 2-D below reference (4, 4): boxes 3x1 and 1x3 overlapping in a 1x1 square
    assert hypervolume(np.array([[1.0, 3.0], [3.0, 1.0]]), np.array([4.0, 4.0])) == pytest.approx(5.0)
    # a point dominated by the front adds nothing; one beyond the reference adds nothing
    front = np.array([[1.0, 3.0], [3.0, 1.0]])
    assert gains(front, np.array([[2.0, 3.5], [5.0, 0.0], [0.0, 0.0]]), np.array([4.0, 4.0])).tolist() == [0.0, 0.0, 11.0]
    rng = np.random.default_rng(0)
    front, reference = rng.random((6, 3)), np.full(3, 1.2)
    predicted = rng.random((5, 40, 3))
    predicted[:, ::3] = predicted[:1, ::3]        # a third of the candidates alike in every row
    per_row = np.mean([gains(front, predicted[r], reference) for r in range(5)], axis=0)
    assert np.array_equal(mean_gains(front, predicted, reference), per_row)
    # brute force: the volume of points dominated by front + candidate minus by front alone
    grid = rng.random((200_000, 3)) * reference
    dominated = (grid[:, None, :] >= front[None]).all(-1).any(-1)
    for c in predicted[0, :4]:
        extra = (~dominated & (grid >= c).all(-1)).mean() * np.prod(reference)
        assert gains(front, c[None], reference)[0] == pytest.approx(extra, abs=0.01)


def test_a_layers_non_call_time_is_drawn_at_its_place_else_its_shape_else_its_layer_scaled_else_its_kind():
    from archsearch.bayes.non_call import NonCallTimes

    once, thrice, other = "test:3@aa:p1", "test:3@aa:p2", "test:1@bb:p3"   # two places of one shape, another shape
    times = NonCallTimes.of([{once: [1.0, 1.0]}, {thrice: [2.0]}, {thrice: [2.0]}, {thrice: [2.0]}, {other: [5.0, 5.0]},
                             {"vote": [9.0]}, {"vote:2@vv:q1": [4.0]}, {"verify:p4": [7.0]},   # by kind; by place before shapes
                             {"fuse:1@ff:r1": [1.0], "fuse:4@ff:r2": [4.0]}])   # one layer at two reaches
    assert set(times.by_place) == {once, thrice, other, "vote:2@vv:q1", "verify:p4", "fuse:1@ff:r1", "fuse:4@ff:r2"}
    assert set(times.by_shape) == {"test:3@aa", "test:1@bb", "vote:2@vv", "fuse:1@ff", "fuse:4@ff"}
    assert set(times.by_layer) == {"test:aa", "test:bb", "vote:vv", "fuse:ff"}
    assert set(times.by_kind) == {"test", "vote", "verify", "fuse"}
    assert times.exponents["vote"] == 0.5 < times.exponents["fuse"] < 1   # no slope seen: 1/2; t = reach here: toward 1
    rng = np.random.default_rng(0)
    run = rng.random((4000, 7, 4))
    t = times.draw([[once, thrice, "test:3@aa:new", "test:9@cc:new", "vote:8@vv:new", "vote:1@dd:new", "verify:2@ee:new"]],
                   run, 3, rng)
    # the shape test:3@aa holds four evaluations (once, and thrice three times), as does its layer; the kind five
    level_below = 4 / 5 * 1 / 4 + 1 / 5 * (4 / 5 * 1 / 4 + 1 / 5 * 1 / 5)   # P(1.0) from the shape on down
    assert abs((t[:, 0] == 1.0).mean() - (1 / 2 + 1 / 2 * level_below)) < 0.025   # seen once: its own half the time
    assert abs((t[:, 1] != 2.0).mean() - 1 / 4 * (1 - (4 / 5 * 3 / 4 + 1 / 5 * (4 / 5 * 3 / 4 + 1 / 5 * 3 / 5)))) < 0.02
    assert set(np.unique(t[:, 2])) == {1.0, 2.0, 5.0}                  # a new place of a known shape: mostly its shape's
    assert abs((t[:, 2] == 5.0).mean() - 1 / 5 * 1 / 5 * 1 / 5) < 0.005   # the kind's only when neither shape nor layer speak
    assert abs((t[:, 3] == 5.0).mean() - 1 / 5) < 0.03                 # a layer never measured: its kind's
    # a known layer at another reach: its time scaled by (8 / 2) ** 0.5 half the time, else the kind's
    assert set(np.unique(t[:, 4])) == {8.0, 9.0, 4.0} and abs((t[:, 4] == 8.0).mean() - 1 / 2) < 0.03
    assert set(np.unique(t[:, 5])) == {9.0, 4.0}                       # a kind recorded before places were kept
    assert set(np.unique(t[:, 6])) == {7.0}


def test_a_background_job_hands_its_result_to_the_next_wait_and_a_discarded_one_stops():
    import threading

    from archsearch.bayes.background import BackgroundJob

    job = BackgroundJob("test-job")
    assert job.wait() is None
    job.submit("k", lambda: 41 + 1)
    assert job.pending
    assert job.wait() == ("k", 42) and job.wait() is None and not job.pending
    job.submit("k", lambda: 43)
    assert job.due() is None and job.pending    # the caller right after a submission goes on without it
    assert job.due() == ("k", 43) and job.due() is None   # the next one waits
    started = threading.Event()

    def until_stopped() -> str:
        started.set()
        if not job.stop.wait(timeout=30):
            raise AssertionError("discard never set stop")
        return "stopped"

    job.submit("k", until_stopped)
    started.wait(timeout=30)
    job.discard()   # returns only once the job has seen stop
    assert job.wait() is None and not job.stop.is_set()
