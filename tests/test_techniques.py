"""One conformance test over every registered technique, plus each technique's own behaviour."""

import asyncio
import inspect

import pytest

from archsearch.llm import LLMClient
from archsearch.registry import BUILTIN, known_kinds, technique_class
from archsearch.spec import ModelSpec
from archsearch.tasks import EXTRACTORS, Question
from archsearch.techniques.base import Candidate, LayerContext, LayerTrace
from archsearch.techniques.rank import parse_ranking
from archsearch.techniques.verify import parse_verdict
from archsearch.testing import FakeLLM

MINIMAL = {"generate": {"model": "m"}, "critique": {"model": "m"}, "rank": {"model": "m"},
           "fuse": {"model": "m"}, "verify": {"model": "m"}, "test": {}, "vote": {}}


@pytest.mark.parametrize("kind", sorted(BUILTIN))
def test_conformance(kind):
    cls = technique_class(kind)
    assert cls.kind == kind and kind in known_kinds()
    params = cls.Params.model_validate(MINIMAL[kind])
    technique = cls(params)
    assert technique.params is params  # constructors only store params
    dumped = params.model_dump(mode="json")
    assert cls.Params.model_validate(dumped) == params  # params round-trip
    assert inspect.iscoroutinefunction(cls.apply)
    with pytest.raises(ValueError):  # pydantic's ValidationError
        cls.Params.model_validate({**MINIMAL[kind], "no_such_param": 1})
    ctx, q = _ctx(), Question("What is 2 + 2?", {"question": "What is 2 + 2?"}, "assert x == 4")
    out = asyncio.run(technique.apply(ctx, q, [_cand("4"), _cand("5")]))
    assert isinstance(out, list) and all(isinstance(c, Candidate) for c in out)


def _ctx(backend=None):
    return LayerContext(LLMClient(backend or FakeLLM()), {"m": ModelSpec(id="fake/m")},
                        EXTRACTORS["last_number"](), LayerTrace(0, "x"), asyncio.Semaphore(2), label="0:x")


def _cand(answer, verdicts=()):
    return Candidate(text=f"The answer is {answer}", answer=answer, model="m", source="generate", verdicts=verdicts)


def test_parse_ranking_and_verdict():
    assert parse_ranking("[3] > [1] > [2]", 3) == [2, 0, 1]
    assert parse_ranking("2 > 3", 3) == [1, 2, 0]
    assert parse_ranking("[2]", 3) == [1, 0, 2]
    assert parse_ranking("[9] > [1]", 2) == [0, 1]
    # numbers in prose are not a ranking (they were taken as one)
    assert parse_ranking("best is 2", 3) is None
    assert parse_ranking("Candidate [3] has a bug on line 1.", 3) is None
    assert parse_verdict("fine.\nVerdict: correct") and not parse_verdict("Verdict: incorrect")
    assert not parse_verdict("no verdict given")


def _apply(kind, params, candidates, backend=None, question=None):
    cls = technique_class(kind)
    q = question or Question("What is 2 + 2?", {}, "assert x == 4")
    return asyncio.run(cls(cls.Params.model_validate(params)).apply(_ctx(backend), q, candidates))


def test_vote_majority_and_weighted():
    cands = [_cand("5"), _cand("4"), _cand("4"), _cand("5"), _cand("5")]
    assert _apply("vote", {}, cands)[0].answer == "5"
    weighted = [_cand("5"), _cand("5"), _cand("4", (("v", True),)), _cand("4", (("v", True),))]
    assert _apply("vote", {"weight_by": "verdicts"}, weighted)[0].answer == "4"
    assert _apply("vote", {}, [])[0:] == []


def test_verify_policies_when_nothing_passes():
    reject_all = FakeLLM(answers=lambda m, msgs, p: "Verdict: incorrect")
    cands = [_cand("4"), _cand("5")]
    assert len(_apply("verify", {"model": "m", "on_none_passed": "keep_all"}, cands, reject_all)) == 2
    assert _apply("verify", {"model": "m", "on_none_passed": "abstain"}, cands, reject_all) == []
    assert [c.answer for c in _apply("verify", {"model": "m", "on_none_passed": "fallback"}, cands, reject_all)] == ["4"]


def test_unit_test_layer_executes_tests():
    cands = [_cand("5"), _cand("4"), _cand(None)]
    kept = _apply("test", {"program": "x = {answer}"}, cands)
    assert [c.answer for c in kept] == ["4"] and kept[0].tests_passed == 1.0
    best = _apply("test", {"program": "x = {answer}", "keep": "best"},
                  cands, question=Question("q", {}, "assert x > 3\nassert x == 4"))
    assert [c.answer for c in best] == ["4"]


FUNC = "def f(x):\n    return {answer}"


def _writer(*replies):
    """A test-writing model whose i-th sample is replies[i]; everything else answers '42'."""
    seen = []

    def answer(model, msgs, params):
        if "test cases" not in msgs[-1]["content"]:
            return None
        seen.append(msgs[-1]["content"])
        return replies[len(seen) - 1]
    return FakeLLM(answers=answer), seen


def test_model_written_tests_are_sampled_and_run():
    backend, seen = _writer("```python\nassert f(1) == 5\nassert f(2) == 5\n```", "assert f(3) == 5\nassert f(1) == 5")
    params = {"source": "model", "model": "m", "n_calls": 2, "program": FUNC, "entry_point": "f"}
    kept = _apply("test", params, [_cand("4"), _cand("5")], backend, question=Question("q", {}, None))
    assert [c.answer for c in kept] == ["5"] and kept[0].tests_passed == 1.0
    assert len(seen) == 2 and "`f`" in seen[0]                       # two calls (samples 0 and 1), one prompt
    assert kept[0].behaviour == ("5", "5", "5")                       # f(1), f(2), f(3): the duplicate runs once


def test_model_tests_are_parsed_strictly():
    from archsearch.programs import parse_model_tests
    hostile = """```python
import os
assert f(1) == 2
assert f(1) == 2
assert os.system("rm -rf /") == 0
def f(x): return 2
while True: pass
assert f(*[1]) == 2
assert f(x=1) == 2
assert f(1) == g(2)
assert f(1) != 3
assert f(__import__("os")) == 1
assert f([1, (2, 3)], -4.5, None, 'a') == {'k': [1]}
```"""
    kept, dropped = parse_model_tests(hostile, "f")
    assert kept == ["assert f(1) == 2", "assert f([1, (2, 3)], -4.5, None, 'a') == {'k': [1]}"]
    assert dropped == 9      # the repeated test is not counted: it is kept once
    assert parse_model_tests("assert f(1) == 1\nassert f(2) == 2\nassert f(3) == 3", "f", limit=2) == (
        ["assert f(1) == 1", "assert f(2) == 2"], 0)


def test_a_written_test_every_candidate_fails_is_suspected_not_a_verdict():
    backend, _ = _writer("assert f(1) == 4\nassert f(1) == 99")     # the second expected value is wrong
    params = {"source": "model", "model": "m", "program": FUNC, "entry_point": "f"}
    cands = [_cand("4"), _cand("3")]
    cls = technique_class("test")
    ctx = _ctx(backend)
    kept = asyncio.run(cls(cls.Params.model_validate(params)).apply(ctx, Question("q", {}, None), cands))
    assert [c.answer for c in kept] == ["4"] and kept[0].tests_passed == 1.0
    assert ctx.trace.notes == {"suspected_wrong_tests": 1, "tests_dropped": 0}


def test_task_and_model_tests_together():
    backend, _ = _writer("assert f(0) == 4")
    params = {"source": "task+model", "model": "m", "program": FUNC, "entry_point": "f", "keep": "all"}
    out = _apply("test", params, [_cand("4"), _cand("5")], backend, question=Question("q", {}, "assert f(9) == 4"))
    assert [c.tests_passed for c in out] == [1.0, 0.0] and out[0].behaviour == ("4", "4")


def test_rank_keeps_top_k_in_model_order():
    ranker = FakeLLM(answers=lambda m, msgs, p: "[3] > [1] > [2]")
    out = _apply("rank", {"model": "m", "keep": 2}, [_cand("1"), _cand("2"), _cand("3")], ranker)
    assert [c.answer for c in out] == ["3", "1"]


def test_generate_instruction_and_demos_make_the_prompt():
    seen = []

    def capture(model, msgs, params):
        seen.append(msgs)
        return "42"

    demos = [{"question": "1 + 1?", "answer": "2. The answer is 2."}, {"question": "2 + 2?", "answer": "The answer is 4."}]
    _apply("generate", {"model": "m", "instruction": "End with 'The answer is N.'", "demos": demos}, [], FakeLLM(answers=capture))
    assert seen[0] == [{"role": "user", "content": "1 + 1?\n\nEnd with 'The answer is N.'"},
                       {"role": "assistant", "content": "2. The answer is 2."},
                       {"role": "user", "content": "2 + 2?\n\nEnd with 'The answer is N.'"},
                       {"role": "assistant", "content": "The answer is 4."},
                       {"role": "user", "content": "What is 2 + 2?\n\nEnd with 'The answer is N.'"}]


def test_generate_personas_rotate_system_prompts():
    seen = []

    def capture(model, msgs, params):
        seen.append(msgs[0]["content"])
        return "42"

    out = _apply("generate", {"model": "m", "n": 4, "style": "personas", "personas": ["A", "B"]}, [], FakeLLM(answers=capture))
    assert len(out) == 4 and sorted(seen) == ["A", "A", "B", "B"]


def test_rank_without_a_ranking_keeps_the_original_order():
    prose = FakeLLM(answers=lambda m, msgs, p: "Candidate 3 looks best, but line 2 of candidate 1 is fine.")
    out = _apply("rank", {"model": "m", "keep": 2}, [_cand("1"), _cand("2"), _cand("3")], prose)
    assert [c.answer for c in out] == ["1", "2"] and all(c.score is None for c in out)


def test_repeated_generate_layers_continue_the_sample_index():
    from archsearch.pipeline import Pipeline
    from archsearch.spec import loads_spec

    spec = loads_spec("""
schema_version: 1
name: twice
task: {template: "{question}", extractor: {kind: last_number}}
models: {m: {id: fake/m}}
layers:
  - {kind: generate, params: {model: m, n: 2, temperature: 0.8}}
  - {kind: critique, params: {model: m}}
  - {kind: generate, params: {model: m, n: 2, temperature: 0.8}}
""")
    result = Pipeline(spec, LLMClient(FakeLLM(answer_range=1000))).__call__("q")
    assert [c.sample_index for c in result.candidates] == [0, 1, 2, 3]
    assert len({c.text for c in result.candidates}) == 4


def test_generators_of_one_step_run_concurrently():
    from archsearch.pipeline import Pipeline
    from archsearch.spec import loads_spec

    spec = loads_spec("""
schema_version: 1
name: ensemble
task: {template: "{question}", extractor: {kind: last_number}}
models: {a: {id: fake/a}, b: {id: fake/b}}
layers:
  - {kind: generate, params: {model: a, n: 2, temperature: 0.8}}
  - {kind: generate, params: {model: b, n: 2, temperature: 0.8}}
  - {kind: vote}
""")
    pipe = Pipeline(spec, LLMClient(FakeLLM(latency_s=0.3)))
    assert pipe.steps() == [[0, 1], [2]]
    result = pipe("q")
    assert result.trace.seconds < 0.55 and result.trace.latency_s < 0.55  # one step of 0.3 s, not two
    assert [layer.step for layer in result.trace.layers] == [0, 0, 1]


def test_fuse_at_temperature_zero_pays_once():
    backend = FakeLLM()
    out = _apply("fuse", {"model": "m", "n_out": 4, "temperature": 0.0}, [_cand("4"), _cand("5")], backend)
    assert len(out) == 1 and backend.calls == 1
    out = _apply("fuse", {"model": "m", "n_out": 3, "temperature": 0.7}, [_cand("4"), _cand("5")], FakeLLM())
    assert len(out) == 3


def test_vote_by_behaviour_counts_programs_that_agree_as_one_answer():
    # three programs, written differently, that all return x + 1; two others that agree on text only with themselves
    loop = "def f(x):\n    y = x\n    y += 1\n    return y"
    arith = "def f(x):\n    return x + 1"
    lam = "f = lambda x: 1 + x"
    wrong = "def f(x):\n    return x * 2"
    cands = [Candidate(text=t, answer=t, model="m", source="generate") for t in (wrong, wrong, loop, arith, lam)]
    q = Question("implement f", {}, "assert f(1) == 2\nassert f(5) == 6")
    by_text = _apply("vote", {}, cands, question=q)
    assert by_text[0].answer == wrong  # text: the one repeated program wins 2 to 1
    by_behaviour = _apply("vote", {"by": "behaviour"}, cands, question=q)
    assert by_behaviour[0].answer == loop and by_behaviour[0].score == 3.0  # behaviour: 3 agree


def test_vote_by_behaviour_ignores_programs_that_crash_on_every_input():
    crash = "def f(x):\n    raise ValueError"
    good = "def f(x):\n    return x + 1"
    cands = [Candidate(text=t, answer=t, model="m", source="generate") for t in (crash, crash, crash, good)]
    q = Question("implement f", {}, "assert f(1) == 2")
    assert _apply("vote", {"by": "behaviour"}, cands, question=q)[0].answer == good


def test_vote_by_agreement_weighs_groups_by_the_tests_they_pass():
    """CodeT's dual agreement: two programs that always return 1 (one of three tests passed) lose to
    one program that passes all three: 2 x 1/3 < 1 x 3/3, though they are the plurality."""
    q = Question("f", {}, "assert f(1) == 1\nassert f(2) == 2\nassert f(3) == 3")
    cands = [_cand("1"), _cand("1 + 0"), _cand("x")]
    tested = _apply("test", {"program": FUNC, "keep": "all"}, cands, question=q)
    assert [c.tests_passed for c in tested] == [pytest.approx(1 / 3), pytest.approx(1 / 3), 1.0]
    assert _apply("vote", {"by": "agreement"}, tested, question=q)[0].answer == "x"
    assert _apply("vote", {"by": "behaviour", "program": FUNC}, tested, question=q)[0].answer == "1"


def test_one_identity_recipe_cannot_diverge_from_the_cache_key():
    """Two generators share an identity (the runtime's sample counter, the surrogate's plan key,
    replay) exactly when their i-th samples have the same cache key, for many random pairs."""
    import random

    from archsearch.techniques.generate import Generate, GenerateParams

    rng = random.Random(0)
    models = [ModelSpec(id="fake/a"), ModelSpec(id="fake/a", timeout_s=5, price={"input_per_mtok": 1, "output_per_mtok": 1}),
              ModelSpec(id="fake/a", params={"top_p": 0.9}), ModelSpec(id="fake/b")]

    def draw() -> tuple:
        params = {"model": "m", "n": rng.choice([1, 4]), "temperature": rng.choice([0.0, 0.8]),
                  "max_tokens": rng.choice([256, 512]), "stop": rng.choice(["never", "accepted"]),
                  "style": rng.choice(["direct", "chain_of_thought", "personas"])}
        if rng.random() < 0.3:
            params["instruction"] = rng.choice(["Think step by step, then state the final answer on the last line.",
                                                "Be brief."])
        if rng.random() < 0.3:
            params["demos"] = [{"question": "1 + 1?", "answer": "2"}][: rng.choice([0, 1])]
        return Generate(GenerateParams.model_validate(params)), rng.choice(models)

    agree = differ = 0
    for _ in range(2000):
        (a, ma), (b, mb) = draw(), draw()
        same_keys = all(a.sample_key(ma, "q?", i) == b.sample_key(mb, "q?", i) for i in range(3))
        assert (a.identity(ma) == b.identity(mb)) == same_keys
        agree, differ = agree + same_keys, differ + (not same_keys)
    assert agree >= 10 and differ >= 10     # both sides of the equivalence were exercised
