"""Choosing the export out of sample: Thresholdout's answers and budget, the posterior rule, the
baseline gate, the resampling advice as a pipeline."""

import numpy as np

from archsearch.objectives import Objective
from archsearch.optimize.decide import Option, SelectSplit, choose
from archsearch.spec import Measured, loads_spec
from archsearch.thresholdout import Thresholdout

SPEC = loads_spec("""
schema_version: 1
name: s
task: {template: "{question}", extractor: {kind: last_number}}
models: {m: {id: fake/m}}
layers: [{kind: generate, params: {model: m, n: 1}}]
""")
OBJ = Objective(name="o", metrics=[{"name": "accuracy", "direction": "maximize"},
                                   {"name": "calls_per_question", "direction": "minimize"}])


def _measured(acc, calls=1.0):
    return Measured(split="search", questions=40, accuracy=acc, accuracy_low=0, accuracy_high=1, usd_per_question=0,
                    latency_p50_s=1, latency_p95_s=1, calls_per_question=calls)


def _option(trial, mean, p_beats, calls=1.0):
    o = Option(trial, f"fp{trial}", SPEC, _measured(mean, calls), accuracy=np.full(100, mean), p_beats=p_beats,
               predicted={"accuracy": mean, "calls_per_question": calls})
    return o


def test_thresholdout_answers_the_training_estimate_unless_the_holdout_disagrees():
    t = Thresholdout(threshold=0.04, sigma=0.0001, budget=2, seed=1)
    assert t.answer("a", 0.70, 0.71) == {"value": 0.70, "revealed": False, "exhausted": False}
    far = t.answer("b", 0.80, 0.60)
    assert far["revealed"] and abs(far["value"] - 0.60) < 0.01 and t.used == 1
    assert t.answer("b", 0.80, 0.10) == far                      # asked again: the same answer, nothing spent
    t.answer("c", 0.90, 0.50)
    assert t.exhausted and t.answer("d", 0.90, 0.10) == {"value": 0.90, "revealed": False, "exhausted": True}
    again = Thresholdout.from_state(t.state())                    # a resumed study keeps the budget and answers
    assert again.used == 2 and again.answer("b", 0.80, 0.10) == far


def _spread(option, sd, seed):
    option.accuracy = option.accuracy + np.random.default_rng(seed).normal(0, sd, len(option.accuracy))
    return option


def test_the_rule_picks_by_posterior_means_and_the_select_split():
    base = _option(0, 0.50, None)
    a, b, c = _option(1, 0.70, 0.99, calls=8), _option(2, 0.68, 0.97, calls=2), _option(3, 0.60, 0.50)
    for i, o in enumerate((a, b, base)):
        _spread(o, 0.02, i)
    # paired with the baseline on 40 select questions: a overfit the search split (+0 points), b holds (+18)
    gains = {1: np.zeros(40), 2: np.array([1.0] * 7 + [0.0] * 33)}
    choice = choose([a, b, c, base], base, OBJ, True, SelectSplit(Thresholdout(threshold=0.04, sigma=0.0001, seed=0),
                    lambda o, _: gains[o.trial], lambda o: 0.5 + gains[o.trial].mean()))
    assert choice.chosen is b and a.select["revealed"] and not b.select["revealed"]
    assert a.select["value"] < b.select["value"] and b.select["measured"] == 0.675
    assert c.select is None                                       # below the 0.9 gate: never re-scored


def test_an_easier_select_split_favours_no_pipeline():
    """Every pipeline scores higher on the select split; the one the posterior prefers is still chosen
    (comparing revealed select accuracies with unrevealed posterior means chose the other)."""
    base = _spread(_option(0, 0.56, None), 0.03, 0)
    top = _spread(_option(1, 0.68, 0.99, calls=2), 0.03, 1)
    near = _spread(_option(2, 0.63, 0.99, calls=1.4), 0.03, 2)
    same = np.array([1.0] * 8 + [0.0] * 33)                  # both +20 points over the baseline on select
    choice = choose([top, near, base], base, OBJ, True, SelectSplit(Thresholdout(sigma=0.0001, seed=0),
                    lambda o, _: same, lambda o: 0.76))
    assert choice.chosen is top


def test_when_nothing_beats_the_baseline_the_baseline_is_chosen_and_said():
    base = _option(0, 0.50, None)
    choice = choose([_option(1, 0.55, 0.80), base], base, OBJ, True, None)
    assert choice.chosen is base and "no pipeline beats the baseline" in choice.reason


def test_the_select_split_can_settle_a_near_miss_either_way():
    base = _option(0, 0.50, None)
    base.accuracy = np.random.default_rng(0).normal(0.50, 0.03, 4000)
    near = _option(1, 0.55, None)
    near.accuracy = base.accuracy + np.random.default_rng(1).normal(0.05, 0.04, 4000)   # P(beats) ~ 0.89
    near.p_beats = float(np.mean(near.accuracy > base.accuracy))
    assert 0.85 < near.p_beats < 0.9
    asked = []

    def compare(option, baseline, diffs):
        asked.append((option.trial, baseline.trial))
        return diffs

    confirms = np.array([1.0] * 10 + [0.0] * 31)          # +10 points on 41 select questions, paired
    choice = choose([near, base], base, OBJ, True, SelectSplit(Thresholdout(sigma=0.0001, seed=0),
                    lambda o, b: compare(o, b, confirms), lambda o: 0.6))
    assert asked == [(1, 0)] and choice.chosen is near and near.p_beats_select > 0.9
    assert "select split's paired comparison" in choice.reason
    near.p_beats_select = None
    refutes = np.array([-1.0] * 4 + [0.0] * 37)            # the select split says it is worse
    choice = choose([near, base], base, OBJ, True, SelectSplit(Thresholdout(sigma=0.0001, seed=0),
                    lambda o, b: refutes, lambda o: 0.6))
    assert choice.chosen is base and near.p_beats_select < near.p_beats
    far = _option(2, 0.52, 0.30)                            # less likely than not to beat it: never compared
    asked.clear()
    choose([far, base], base, OBJ, True, SelectSplit(Thresholdout(seed=0), lambda o, b: compare(o, b, confirms),
                                                    lambda o: 0.6))
    assert asked == [] and far.p_beats_select is None


def test_without_a_posterior_the_raw_rule_decides():
    base = _option(0, 0.50, None)
    best = _option(1, 0.80, None)
    assert choose([best, base], base, OBJ, False, None).chosen is best


def test_the_baseline_is_the_cheapest_and_simplest_pipeline(tmp_path):
    """The space says which of its pipelines is the baseline: the fewest calls by its layers' own count,
    then the fewest layers -- greedy alone, not greedy plus a test of its one answer."""
    from archsearch.space import SearchSpace

    (tmp_path / "space.yaml").write_text("""
name: s
models: {m: {id: fake/m}}
layers:
  - one_of:
      four-vote: [{kind: generate, params: {model: m, n: 4}}, {kind: vote}]
      judged: [{kind: generate, params: {model: m, n: 1}}, {kind: verify, params: {model: m}}]
      one-vote: [{kind: generate, params: {model: m, n: 1}}, {kind: vote}]
      one: [{kind: generate, params: {model: m, n: 1}}]
""")
    params, spec = SearchSpace(tmp_path / "space.yaml").baseline()
    assert [layer.kind for layer in spec.layers] == ["generate"] and params == {"0.branch": "one"}


def test_the_resampling_advice_is_a_pipeline_to_export():
    from archsearch.bayes.summary import Band, Ceiling
    from archsearch.optimize.conclude import resample_until_accepted

    chosen = loads_spec("""
schema_version: 1
name: c
task: {template: "{question}", extractor: {kind: last_number}}
models: {m: {id: fake/m}}
layers:
  - {kind: generate, params: {model: m, n: 8, temperature: 0.8}}
  - {kind: test, params: {keep: best}}
  - {kind: vote}
""")
    advice = resample_until_accepted(chosen, Ceiling("visible tests", Band(0.8, 0.7, 0.9), 5, 1.0))
    gen, test = advice.layers
    assert gen.params["n"] == 5 and gen.params["stop"] == "accepted"
    assert test.kind == "test" and test.params["keep"] == "passing" and test.params["on_none_passed"] == "abstain"


def test_predicted_latency_is_the_posterior_median_and_costs_the_mean():
    """Latency draws are log-normal and wide (a sitting's load): the report predicts their median;
    accuracy, calls and dollars add up, so they are predicted by their mean."""
    from archsearch.bayes.interpret import Simulated
    from archsearch.optimize.decide import predicted_metrics

    rng = np.random.default_rng(0)
    lat = np.exp(rng.normal(size=(4000, 2)))                          # mean e^0.5 ~ 1.65, median 1
    ones = np.ones((4000, 2))
    sim = Simulated(accuracy=ones * [0.5, 0.7], calls=ones * 3, tokens=ones, usd=ones * 0.01, latency_p50=lat,
                    latency_p95=3 * lat, bought=ones, determined=np.zeros(2, bool))
    got = predicted_metrics(sim, 1)
    assert np.allclose([got["accuracy"], got["calls_per_question"], got["usd_per_question"]], [0.7, 3.0, 0.01])
    assert abs(got["latency_p50_s"] - 1.0) < 0.06 and abs(got["latency_p95_s"] - 3.0) < 0.2
    assert got["latency_p50_s"] < np.mean(lat[:, 1]) - 0.4
