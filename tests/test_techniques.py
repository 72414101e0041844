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
    with pytest.raises(Exception):
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
    assert parse_ranking("best is 2", 3) == [1, 0, 2]
    assert parse_ranking("[9] > [1]", 2) == [0, 1]
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


def test_generated_tests_come_from_the_model():
    writer = FakeLLM(answers=lambda m, msgs, p: "```python\nassert x == 5\n```" if "assert statements" in msgs[-1]["content"] else None)
    kept = _apply("test", {"source": "generate", "model": "m", "program": "x = {answer}"}, [_cand("4"), _cand("5")], writer)
    assert [c.answer for c in kept] == ["5"]


def test_rank_keeps_top_k_in_model_order():
    ranker = FakeLLM(answers=lambda m, msgs, p: "[3] > [1] > [2]")
    out = _apply("rank", {"model": "m", "keep": 2}, [_cand("1"), _cand("2"), _cand("3")], ranker)
    assert [c.answer for c in out] == ["3", "1"]


def test_generate_personas_rotate_system_prompts():
    seen = []

    def capture(model, msgs, params):
        seen.append(msgs[0]["content"])
        return "42"

    out = _apply("generate", {"model": "m", "n": 4, "style": "personas", "personas": ["A", "B"]}, [], FakeLLM(answers=capture))
    assert len(out) == 4 and sorted(seen) == ["A", "A", "B", "B"]
