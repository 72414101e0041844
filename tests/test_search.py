"""The search on a toy task with deterministic fake models: front, export, reuse, budget, spaces."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from archsearch.candidates import enumerate_space
from archsearch.llm import Budget, CallCache, LLMClient
from archsearch.objectives import load_objective
from archsearch.optimize.conclude import conclude
from archsearch.optimize.report import export
from archsearch.optimize.search import Search, SearchSettings
from archsearch.space import RandomSuggester, SearchSpace
from archsearch.spec import load_spec
from archsearch.tasks import Task
from archsearch.testing import FakeLLM, NoisyArithmetic

ACCURACY = {"fake/strong": 0.75, "fake/weak": 0.35}


def _search(fixtures, tmp_path, trials=12, budget=None, latency=0.0, concurrency=32, sampler="tpe"):
    toy = fixtures / "toy"
    backend = FakeLLM(answers=NoisyArithmetic(ACCURACY), latency_s=latency)
    client = LLMClient(backend, CallCache(f"sqlite:///{tmp_path / 'calls.sqlite'}"), max_concurrency=concurrency)
    s = SearchSettings(task=Task(toy / "task.yaml"), space=SearchSpace(toy / "space.yaml"),
                       objective=load_objective(toy / "objective.yaml"), trials=trials,
                       storage=f"sqlite:///{tmp_path / 'study.sqlite'}", study_name="toy", out_dir=tmp_path,
                       sampler=sampler, budget=budget or Budget(), concurrency=concurrency)
    return Search(s, client), backend


def test_search_finds_a_front_and_exports_a_valid_spec(fixtures, tmp_path):
    search, backend = _search(fixtures, tmp_path)
    outcomes = search.run()
    assert search.finished() == 12 and backend.calls > 0
    front = search.front()
    assert front
    best = max(front, key=lambda t: t.values[0])
    assert best.values[0] >= 0.7  # the strong model (75% per sample) is found
    conclusion = conclude(search)
    assert conclusion.evidence is not None and conclusion.choice.posterior
    spec = export(search, conclusion, tmp_path / "pipeline.yaml")
    again = load_spec(tmp_path / "pipeline.yaml")
    assert again == spec and again.metrics["test"].questions == 16
    assert again.provenance.trial == conclusion.choice.chosen.trial and again.provenance.data_hash
    assert "p_beats_baseline" in again.metrics["search"].extra or conclusion.choice.chosen is conclusion.choice.baseline
    assert {o.state for o in outcomes} <= {"COMPLETE", "PRUNED"}


def test_rerun_makes_zero_paid_calls_and_gives_the_same_front(fixtures, tmp_path):
    first, _ = _search(fixtures, tmp_path, trials=10)
    first.run()
    front1 = [(t.number, t.values) for t in first.front()]
    second, backend = _search(fixtures, tmp_path, trials=10)
    second.run()  # the study is complete: nothing to do
    assert backend.calls == 0 and second.client.stats.calls == 0
    assert [(t.number, t.values) for t in second.front()] == front1
    third, backend3 = _search(fixtures, tmp_path, trials=10)
    third.study = None
    # a new study over the same cache re-evaluates every pipeline but pays for nothing
    third.settings.study_name = "toy-again"
    third.run()
    assert backend3.calls == 0 and third.client.stats.cache_hits > 0


def test_dollar_budget_holds_under_concurrency(fixtures, tmp_path):
    search, backend = _search(fixtures, tmp_path, trials=200, budget=Budget(usd=0.5), latency=0.002, concurrency=32)
    search.run()
    assert search.settings.budget.spent_usd <= 0.5
    assert search.client.stats.usd <= 0.5
    assert "budget" in search.stopped
    assert search.finished() < 200


SPACES = ["spaces/sampling.yaml", "spaces/sampling-cot.yaml", "spaces/archon.yaml", "spaces/sampling-members.yaml",
          "tests/fixtures/toy/space.yaml"]
TASKS = ["experiments/humaneval-local/task.yaml", "experiments/gsm8k-local/task.yaml"]


@pytest.fixture(scope="module")
def loaded(root):
    return [SearchSpace(root / s) for s in SPACES], [Task(root / t) for t in TASKS]


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), which=st.integers(0, len(SPACES) - 1), task_index=st.integers(0, len(TASKS) - 1))
def test_every_pipeline_any_space_draws_validates(loaded, seed, which, task_index):
    spaces, tasks = loaded
    spec = spaces[which].build(RandomSuggester(seed), tasks[task_index])
    assert spec.layers and spec.layers[0].kind == "generate"
    assert all(layer.params["model"] in spec.models for layer in spec.layers if layer.params.get("model"))


def test_study_opens_in_optuna_with_params_values_and_specs(fixtures, tmp_path):
    import optuna

    search, _ = _search(fixtures, tmp_path, trials=6)
    search.run()
    study = optuna.load_study(study_name="toy", storage=f"sqlite:///{tmp_path / 'study.sqlite'}")
    done = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert done and all(len(t.values) == 2 for t in done)
    assert all("0.model" in t.params and "0.n" in t.params for t in done)
    assert all(load_spec_text(t.user_attrs["spec"]).layers[0].kind == "generate" for t in done)
    assert all("accuracy" in t.user_attrs["search"] for t in done)


def load_spec_text(text):
    from archsearch.spec import loads_spec

    return loads_spec(text)


def test_search_completes_with_half_of_calls_failing(fixtures, tmp_path):
    from archsearch.testing import FlakyBackend

    search, fake = _search(fixtures, tmp_path, trials=10)
    flaky = FlakyBackend(fake, failure_rate=0.5, seed=5)
    search.client.backend = flaky
    # so some calls fail for good (0.5 ** 2 = 25% of calls), and some questions even after the trial
    # gives its failed questions one more try
    search.client.max_retries = 1
    search.client.backoff_base_s = 0.0
    search.client.hedging = False   # a hedge is a second chance for a failing call: not what this test counts
    outcomes = search.run()
    assert search.finished() == 10 and flaky.failed > 0
    stats = search.client.stats
    assert stats.failures > 0 and stats.errors["HTTP 503"] == flaky.failed
    assert stats.calls == fake.calls  # spend is counted for answered calls only
    failed = [t for t in search.study.trials if t.user_attrs.get("failed_questions")]
    assert failed and all("HTTP 503" in q for t in failed for q in t.user_attrs["failed_questions"])
    assert all(o.state in ("COMPLETE", "PRUNED", "FAIL") for o in outcomes)


def test_optimize_with_two_worker_processes(fault_server, tmp_path):
    import json
    import sqlite3

    from conftest import http_experiment, run_cli

    exp = http_experiment(tmp_path / "exp", fault_server, trials=8)
    out = run_cli("optimize", str(exp), "--workers", "2", "--concurrency", "8")
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads((exp / "out" / "report.json").read_text())
    assert report["front"]
    rows = sqlite3.connect(exp / "out" / "study.sqlite").execute(
        "select value_json from trial_user_attributes where key = 'pid'").fetchall()
    assert len({r[0] for r in rows}) == 2  # both workers ran trials of the one study
    # with the surrogate (the default) no pipeline was scored twice: a repeat takes over its first
    # trial's result (duplicate_of) or, while that one still runs in the other worker, is dropped
    import optuna

    study = optuna.load_study(study_name=report["study"], storage=f"sqlite:///{exp / 'out' / 'study.sqlite'}")
    scored = [t.user_attrs["fingerprint"] for t in study.trials
              if "fingerprint" in t.user_attrs and "duplicate_of" not in t.user_attrs
              and t.state != optuna.trial.TrialState.FAIL]
    assert len(scored) == len(set(scored))


def test_cli_budget_holds_at_concurrency_32_and_still_reports(fault_server, tmp_path):
    import json

    from conftest import http_experiment, run_cli

    exp = http_experiment(tmp_path / "exp", fault_server, trials=200, price_per_mtok=700.0)
    out = run_cli("optimize", str(exp), "--budget-usd", "0.50", "--concurrency", "32")
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads((exp / "out" / "report.json").read_text())
    assert 0 < report["client"]["usd"] <= 0.50
    assert "budget" in report["stopped"]
    assert (exp / "out" / "pipeline.yaml").exists() and (exp / "out" / "front.png").exists()


def test_surrogate_sampler_leaves_an_enqueued_trial_as_it_is(fixtures, tmp_path):
    from archsearch.optimize.study import open_study

    search, _ = _search(fixtures, tmp_path, trials=2, sampler="surrogate")
    search.settings.space = SearchSpace(fixtures / "toy" / "space-sampling.yaml")
    search.study = open_study(search.settings)
    search.study.enqueue_trial({"0.model": "weak", "0.n": 3, "1.enabled": False})
    search.run()
    first, second = search.study.trials[:2]
    assert (first.params["0.model"], first.params["0.n"], first.params["1.enabled"]) == ("weak", 3, False)
    # no probe planned (and logged) for the enqueued trial; the next probes the model it did not sample
    assert [e["probe"] for e in search.sampler.log if "probe" in e] == [second.user_attrs["fingerprint"]]
    assert search.spec_of(second).models[search.spec_of(second).layers[0].params["model"]].id == "fake/strong"


def test_surrogate_sampler_plans_unevaluated_pipelines(fixtures, tmp_path):
    from archsearch.space import SearchSpace

    search, _ = _search(fixtures, tmp_path, trials=8, sampler="surrogate")
    search.settings.space = SearchSpace(fixtures / "toy" / "space-sampling.yaml")
    search.run()
    log = search.sampler.log
    probes, plans = [e["probe"] for e in log if "probe" in e], [e for e in log if "probe" not in e]
    assert len(probes) == 2 and len(plans) >= 5 and all(e["choice"] for e in plans)  # one probe per model, then plans
    fingerprints = [t.user_attrs["fingerprint"] for t in search.study.trials]
    assert fingerprints[:2] == probes
    first_two = [search.spec_of(t) for t in search.study.trials[:2]]
    assert {s.models[s.layers[0].params["model"]].id for s in first_two} == {"fake/strong", "fake/weak"}
    assert all(s.layers[0].params["n"] == 1 for s in first_two)  # the cheapest pipeline of each model
    planned = [entry["choice"] for entry in plans]
    assert all(fingerprints.count(fp) == 1 for fp in planned)  # never one already evaluated
    post = search.sampler.last_posterior
    ids = [layer.model.id for layer in search.sampler.evidence.generator_layers()]
    strong, weak = ids.index("fake/strong"), ids.index("fake/weak")
    assert (post.theta[:, strong] > post.theta[:, weak]).mean() > 0.95  # it learnt which model is better
    # its calls were made just now: the next ones are priced in the same sitting (a report's, in a new one)
    costs = search.sampler.evidence.costs
    assert {model for model, _ in costs.current} == {"fake/strong", "fake/weak"} and not costs.fresh().current
    # every trial kept the runtime's time in layers that paid no call; the report's evidence learns from them
    kept = [t.user_attrs["non_call_s"] for t in search.study.trials if t.state.is_finished() and "non_call_s" in t.user_attrs]
    assert len(kept) >= 5 and any(kept)
    assert not search.sampler.evidence.non_call   # the sampler's proposals: calls' latency alone
    from archsearch.optimize.conclude import evidence

    fitted, _ = evidence(search, fit="svi")
    assert set(fitted.non_call.by_place) == {place for times in kept for place in times}   # kept by layer place
    assert set(fitted.non_call.by_shape) == {place.rsplit(":", 1)[0] for times in kept for place in times}   # and shape
    assert set(fitted.non_call.by_kind) == {place.split(":")[0] for times in kept for place in times}


@pytest.mark.slow   # two minutes; the default run covers --workers 2 through joblib (the default backend)
def test_optimize_workers_on_a_dask_cluster(latency_server, tmp_path):
    """`--workers 2 --cluster ADDRESS`: two Dask worker processes run one study over real HTTP; no
    call is paid twice (the model server saw exactly as many requests as the cache holds)."""
    import json
    import sqlite3
    import urllib.request

    from conftest import http_experiment, run_cli
    from dask.distributed import LocalCluster

    exp = http_experiment(tmp_path / "exp", latency_server, trials=10)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        out = run_cli("optimize", str(exp), "--workers", "2", "--cluster", cluster.scheduler_address,
                      "--concurrency", "8")
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Dask cluster" in out.stderr
    db = sqlite3.connect(exp / "out" / "study.sqlite")
    studies = db.execute("select count(*) from studies").fetchone()[0]
    pids = {r[0] for r in db.execute("select value_json from trial_user_attributes where key = 'pid'")}
    assert studies == 1 and len(pids) == 2   # one study, trials from both Dask workers
    served = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{latency_server}/stats").read())["n"]
    rows = sqlite3.connect(exp / "calls.sqlite").execute("select count(*) from archsearch_llm_calls").fetchone()[0]
    assert served == rows > 0                 # every paid call once: none paid twice


def test_a_users_own_layer_order_gets_a_posterior_for_every_front_row(fault_server, tmp_path):
    """A space outside the old two shapes (verify before fuse, a vote after a fuse) over two models of
    an OpenAI-compatible endpoint that fails 15% of requests: the surrogate (the default sampler)
    models every pipeline, so every front row has a posterior and P(beats the baseline), and the
    LLM judge has a row in the verifier table."""
    import json
    import textwrap

    from conftest import http_experiment, run_cli

    exp = http_experiment(tmp_path / "exp", fault_server, trials=12)
    base = f"transport: http, params: {{api_base: \"http://127.0.0.1:{fault_server}/v1\"}}, " \
           f"price: {{input_per_mtok: 1, output_per_mtok: 2}}"
    (exp / "space.yaml").write_text(textwrap.dedent(f"""
        name: users-own
        models:
          a: {{id: openai/a, {base}}}
          b: {{id: openai/b, {base}}}
        layers:
          - {{kind: generate, params: {{model: {{choice: [a, b]}}, n: {{choice: [1, 3, 5]}}, temperature: 0.7, max_tokens: 32}}}}
          - {{kind: verify, optional: true, params: {{model: a, max_tokens: 32}}}}
          - {{kind: fuse, optional: true, params: {{model: b, max_tokens: 32}}}}
          - {{kind: vote, optional: true}}
    """))
    out = run_cli("optimize", str(exp), "--concurrency", "8")
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads((exp / "out" / "report.json").read_text())
    assert report["surrogate"]["modelled"] and report["surrogate"]["uncovered_layers"] == []
    front = {row["trial"] for row in report["front"]}
    options = {o["trial"]: o for o in report["options"]}
    baseline = report["choice"]["baseline"]["trial"]
    assert front and front <= set(options)
    for trial in front:
        assert options[trial]["posterior_new_questions"] is not None
        assert trial == baseline or options[trial]["p_beats_baseline"] is not None
    assert any(v["verifier"] == "openai/a" for v in report["verifiers"])


def test_a_space_too_large_to_list_is_counted_once_and_never_built(fixtures, monkeypatch):
    """The surrogate sampler walks a space's decisions once; one with more pipelines than it lists is
    counted without building a single spec (building the first 20,000 of a large space was 4 s of its
    first proposal), then drawn from and never walked again. A listable space is walked once for the
    count and the listing, and its baseline lists nothing again."""
    from archsearch import space as space_module
    from archsearch.optimize import sampler

    toy = fixtures / "toy"
    task = Task(toy / "task.yaml")
    size = len(enumerate_space(SearchSpace(toy / "space.yaml"), task))
    walks, built = [], []
    walk, spec_of = space_module.walk_space, SearchSpace.spec_of
    monkeypatch.setattr(space_module, "walk_space", lambda *a, **k: walks.append(a[2]) or walk(*a, **k))
    monkeypatch.setattr(SearchSpace, "spec_of", lambda self, *a, **k: built.append(1) or spec_of(self, *a, **k))
    big = sampler.SurrogateSampler(SearchSpace(toy / "space.yaml"), task, [],
                                   load_objective(toy / "objective.yaml"), None, {}, enumerate_limit=1)
    assert big.listed() is None and big.listed() is None and walks == [2] and built == []
    small = sampler.SurrogateSampler(SearchSpace(toy / "space.yaml"), task, [],
                                     load_objective(toy / "objective.yaml"), None, {})
    n = len(small.listed())
    assert n == size > 1 and small.listed() is small.listed() and walks == [2, 5001] and len(built) == n
    assert small.space.count(task) == n and small.space.baseline(task) == small.space.baseline(task)
    assert len(walks) == 2 and len(built) == n
    assert len(small.space.pipelines(Task(toy / "task.yaml"))) == n and len(walks) == 3   # another task: anew


def test_a_pipeline_the_cache_holds_is_simulated_once(fixtures):
    """A pipeline whose every call is cached replays one outcome under every draw: the sampler
    simulates it at its first proposal only, and keeps simulating the others."""
    import numpy as np

    from archsearch.bayes.interpret import Simulated
    from archsearch.optimize import sampler

    toy = fixtures / "toy"
    s = sampler.SurrogateSampler(SearchSpace(toy / "space.yaml"), Task(toy / "task.yaml"), [],
                                 load_objective(toy / "objective.yaml"), None, {})
    candidates = s.listed()[:3]
    cached = {id(candidates[0].plan), id(candidates[2].plan)}
    asked = []

    class Evidence:
        def on_search(self, plans, rng, draws):
            asked.append(len(plans))
            value = rng.random((len(draws), len(plans)))
            fields = {f: value for f in ("accuracy", "calls", "tokens", "usd", "latency_p50", "latency_p95", "bought")}
            return Simulated(**fields, determined=np.array([id(p) in cached for p in plans]))

    s.evidence = Evidence()
    first = s._simulate(candidates, 0, np.random.default_rng(0))
    second = s._simulate(candidates, 0, np.random.default_rng(1))
    assert asked == [3, 1, 1, 1]   # all once, the uncached one replicated; then only the uncached one
    assert first.determined.tolist() == second.determined.tolist() == [True, False, True]
    assert np.array_equal(first.accuracy[:, [0, 2]], second.accuracy[:, [0, 2]])
    assert not np.array_equal(first.accuracy[:, 1], second.accuracy[:, 1])
    assert first.accuracy.shape == (s.replicates, 3)


def test_when_no_pipeline_promises_a_gain_the_one_nearest_the_front_is_tried(fixtures):
    """Once the posterior expects no candidate to add to the front, the sampler does not hand the trial
    to TPE: it tries the feasible pipeline with calls still to buy whose predicted point is nearest the
    front (for accuracy alone: the best predicted). Known outcomes and infeasible ones are passed over."""
    import numpy as np

    from archsearch.bayes.interpret import Simulated
    from archsearch.objectives import MetricGoal, Objective
    from archsearch.optimize import sampler

    toy = fixtures / "toy"
    s = sampler.SurrogateSampler(SearchSpace(toy / "space.yaml"), Task(toy / "task.yaml"), [],
                                 load_objective(toy / "objective.yaml"), None, {})   # accuracy up, usd <= 0.05 down
    accuracy, usd = np.array([0.9, 0.95, 0.75, 0.4]), np.array([0.02, 0.10, 0.045, 0.012])
    draws = np.array([-0.01, 0.01])[:, None]
    fields = {"accuracy": accuracy + draws, "usd": usd + 0 * draws}
    fields |= {f: 0 * draws + np.ones(4) for f in ("calls", "tokens", "latency_p50", "latency_p95", "bought")}
    sim = Simulated(**fields, determined=np.array([True, False, False, False]))
    observed = np.array([[-0.8, 0.04], [-0.5, 0.01]])
    # 0 is known, 1 breaks the dollar bound; 3 is 0.002 dollars from the front, 2 is 0.005 dollars and 5 points
    assert s._closest_to_front(sim, observed) == 3
    s.objective = Objective(name="acc", metrics=[MetricGoal(name="accuracy", direction="maximize")])
    assert s._closest_to_front(sim, observed[:, :1]) == 1
    known = Simulated(**fields, determined=np.ones(4, bool))
    assert s._closest_to_front(known, observed[:, :1]) is None


def test_pipelines_found_to_add_nothing_are_not_simulated_again(fixtures):
    """Once the pipelines left are replays that add nothing to the front, they stay so (a replay never
    changes, the front only grows): a proposal among them alone is TPE's without a refit or a
    simulation (on the HumanEval pool, 19 of the default search's 30 proposals); one with a pipeline
    not among them (a trial another worker ran that failed) is scored again."""
    import numpy as np
    import optuna

    from archsearch.bayes.interpret import Simulated
    from archsearch.optimize import sampler

    toy = fixtures / "toy"
    s = sampler.SurrogateSampler(SearchSpace(toy / "space.yaml"), Task(toy / "task.yaml"), [],
                                 load_objective(toy / "objective.yaml"), None, {})
    candidates, asked, fits = s.listed()[:4], [], []

    class Evidence:
        posterior = type("Posterior", (), {"draws": 4})()

        def on_search(self, plans, rng, draws):   # every candidate known: 0.5 right at 0.01 dollars
            asked.append(len(plans))
            one = np.ones((len(draws), len(plans)))
            fields = {f: one for f in ("calls", "tokens", "latency_p50", "latency_p95")}
            return Simulated(accuracy=0.5 * one, usd=0.01 * one, bought=0 * one, **fields,
                             determined=np.ones(len(plans), bool))

    s.evidence = Evidence()
    s.fit = lambda plans: fits.append(1) or s.evidence.posterior
    study = optuna.create_study(directions=["maximize", "minimize"])
    study.add_trial(optuna.trial.create_trial(values=[0.9, 0.001], params={}, distributions={}))   # dominates them
    assert s._propose(study, candidates[:3], set(), 1) is None and asked == [3] and len(fits) == 1
    assert s._propose(study, candidates[:3], {candidates[0].fingerprint}, 2) is None
    assert asked == [3] and len(fits) == 1
    assert s._propose(study, candidates, set(), 3) is None and asked == [3, 1] and len(fits) == 2   # one new: scored
