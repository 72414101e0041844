"""Generators that stop early: at the first sample the next layer accepts, or once the vote is
settled. Calls and latency are what was spent; sample i is the same cached object as ever."""

import asyncio

import pytest

from archsearch.errors import SpecError
from archsearch.llm import CallCache, LLMClient
from archsearch.llm.types import Completion
from archsearch.pipeline import Pipeline
from archsearch.spec import loads_spec
from archsearch.techniques.vote import beta_lead


class Script:
    """Sample i answers ANSWERS[i]; every call takes 0.05 s; the judge accepts answers >= 10."""

    def __init__(self, answers):
        self.answers, self.calls = answers, []

    async def complete(self, model_id, messages, params, sample_index=0):
        await asyncio.sleep(0.05)
        prompt = messages[-1]["content"]
        if "Verdict" in prompt:
            value = int(prompt.split("Proposed answer:")[1].split("The answer is ")[1].split(".")[0])
            self.calls.append(("verify", value))
            return Completion("Verdict: " + ("correct" if value >= 10 else "incorrect"), 3, 3)
        self.calls.append(("sample", sample_index))
        return Completion(f"The answer is {self.answers[sample_index]}.", 3, 3)


def _spec(layers: str):
    return loads_spec(f"""
schema_version: 1
name: seq
task: {{template: "{{question}}", extractor: {{kind: last_number}}}}
models: {{m: {{id: fake/m}}}}
layers:
{layers}
""")


GEN = "  - {{kind: generate, params: {{model: m, n: 6, temperature: 0.8, stop: {stop}}}}}\n"


def test_until_accepted_stops_at_the_first_accepted_sample():
    backend = Script([3, 4, 12, 13, 5, 6])
    pipe = Pipeline(_spec(GEN.format(stop="accepted") + "  - {kind: verify, params: {model: m}}"), LLMClient(backend))
    result = pipe("q")
    assert result.answer == "12"
    assert backend.calls == [("sample", 0), ("verify", 3), ("sample", 1), ("verify", 4), ("sample", 2), ("verify", 12)]
    assert result.trace.calls == 6 and result.trace.latency_s >= 6 * 0.05  # one after another


def test_until_accepted_applies_the_none_passed_policy_over_all_drawn():
    for policy, expected, count in (("keep_all", "1", 6), ("fallback", "1", 1), ("abstain", None, 0)):
        backend = Script([1, 2, 3, 4, 5, 6])
        spec = _spec(GEN.format(stop="accepted") + f"  - {{kind: verify, params: {{model: m, on_none_passed: {policy}}}}}")
        result = Pipeline(spec, LLMClient(backend)).__call__("q")
        assert result.answer == expected and len(result.candidates) == count
        assert sum(kind == "sample" for kind, _ in backend.calls) == 6


def test_until_settled_stops_when_the_vote_cannot_change_or_is_sure():
    backend = Script([7, 7, 7, 7, 9, 9])
    spec = _spec(GEN.format(stop="settled") + "  - {kind: vote}")
    result = Pipeline(spec, LLMClient(backend)).__call__("q")
    assert result.answer == "7"
    assert [i for kind, i in backend.calls] == [0, 1, 2, 3]  # 4 of 4 agree: P(lead) = 0.97 >= 0.95
    backend = Script([7, 8, 9, 7, 7, 7])
    result = Pipeline(spec, LLMClient(backend)).__call__("q")
    assert result.answer == "7" and len(backend.calls) == 5  # 7,8,9,7,7: the runner-up cannot catch up with one left
    assert beta_lead(4, 0) == pytest.approx(0.96875) and beta_lead(3, 1) == pytest.approx(0.8125)


def test_sequential_samples_are_the_fixed_pipelines_samples(tmp_path):
    cache = f"sqlite:///{tmp_path / 'c.sqlite'}"
    fixed = Pipeline(_spec(GEN.format(stop="never") + "  - {kind: vote}"), LLMClient(Script([7, 8, 9, 7, 7, 7]), CallCache(cache)))
    fixed("q")
    backend = Script([7, 8, 9, 7, 7, 7])
    seq = Pipeline(_spec(GEN.format(stop="settled") + "  - {kind: vote}"), LLMClient(backend, CallCache(cache)))
    result = seq("q")
    assert result.trace.calls == 0 and result.trace.cache_hits == 5 and backend.calls == []  # stopped at 5, all replayed
    # the recorded latencies, one after another (plus this process's own time: up to 38 ms measured on a loaded CI box)
    assert result.trace.latency_s == pytest.approx(5 * 0.05, abs=0.06)


def test_candidates_of_earlier_layers_are_judged_before_anything_is_drawn():
    lead = "  - {kind: generate, params: {model: m, n: 1, temperature: 0.0}}\n"
    check = "  - {kind: verify, params: {model: m}}"
    backend = Script([12, 3, 4, 5, 6, 7])      # the greedy answer (sample 0 at T=0) is accepted: no sample drawn
    result = Pipeline(_spec(lead + GEN.format(stop="accepted") + check), LLMClient(backend)).__call__("q")
    assert result.answer == "12" and backend.calls == [("sample", 0), ("verify", 12)]
    backend = Script([3, 4, 5, 13, 6, 7])      # rejected: the T=0.8 samples are drawn until one is accepted
    result = Pipeline(_spec(lead + GEN.format(stop="accepted") + check), LLMClient(backend)).__call__("q")
    assert result.answer == "13" and [c.answer for c in result.candidates] == ["13"]
    assert [i for kind, i in backend.calls if kind == "sample"] == [0, 0, 1, 2, 3]   # greedy, then T=0.8 0..3
    backend = Script([3, 4, 5, 6, 7, 8])       # nothing accepted: keep_all, the greedy answer first
    result = Pipeline(_spec(lead + GEN.format(stop="accepted") + check), LLMClient(backend)).__call__("q")
    assert result.answer == "3" and len(result.candidates) == 7


def test_until_settled_over_the_accepted_samples_when_a_check_comes_first():
    # a judge accepts >= 10: 12 then 14 disagree, 3 and 4 are rejected, then 12 again: 2 of 3 accepted
    # agree; at confidence 0.8 that is not sure (P = 0.69), so it draws on until the lead is sure
    layers = (GEN.format(stop="settled").replace("stop: settled", "stop: settled, confidence: 0.8")
              + "  - {kind: verify, params: {model: m}}\n  - {kind: vote}")
    backend = Script([12, 14, 3, 12, 4, 12])
    result = Pipeline(_spec(layers), LLMClient(backend)).__call__("q")
    assert result.answer == "12"
    assert [i for kind, i in backend.calls if kind == "sample"] == [0, 1, 2, 3, 4, 5]  # 12,12,12 vs 14: P = 0.81 at the 6th
    backend = Script([12, 3, 12, 14, 14, 14])
    result = Pipeline(_spec(layers), LLMClient(backend)).__call__("q")
    assert result.answer == "12" and [i for kind, i in backend.calls if kind == "sample"] == [0, 1, 2]  # 2 accepted agree
    assert [c.answer for c in result.candidates] == ["12"] and result.candidates[0].parents == ("0.0", "0.2")
    steps = Pipeline(_spec(layers), LLMClient(Script([1] * 6))).steps()
    assert steps == [[0, 1, 2]]  # one sequential step: the generator, the check and the vote
    backend = Script([1, 2, 3, 4, 5, 6])  # nothing accepted: all n drawn, the none-passed policy (keep_all) then the vote
    result = Pipeline(_spec(layers), LLMClient(backend)).__call__("q")
    assert result.answer == "1" and sum(kind == "sample" for kind, _ in backend.calls) == 6


def test_a_generator_that_stops_early_needs_its_partner_layer():
    with pytest.raises(SpecError, match=r"layers\[0\]\.params\.stop: 'accepted' needs test or verify right after it"):
        _spec(GEN.format(stop="accepted") + "  - {kind: vote}")
    with pytest.raises(SpecError, match="'settled' needs vote or test -> vote or verify -> vote right after it, but got nothing"):
        _spec(GEN.format(stop="settled"))
    with pytest.raises(SpecError, match="'settled' needs .* but got verify"):
        _spec(GEN.format(stop="settled") + "  - {kind: verify, params: {model: m}}")
