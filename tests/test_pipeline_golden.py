"""A spec with every layer kind runs against the fake LLM; golden files pin answers and traces.

Regenerate after an intended change with: ARCHSEARCH_UPDATE_GOLDEN=1 pytest tests/test_pipeline_golden.py
"""

import asyncio
import json
import os
from dataclasses import asdict
from pathlib import Path

from archsearch.llm import CallCache, LLMClient
from archsearch.pipeline import Pipeline
from archsearch.spec import load_spec
from archsearch.testing import FakeLLM

GOLDEN = Path(__file__).parent / "golden" / "all_layers.json"
QUESTIONS = [
    {"question": "What is 1 + 1?", "visible_tests": "assert x == 2"},
    {"question": "How many legs has a spider?", "visible_tests": "assert x == 8"},
    {"question": "What is 3 - 3?", "visible_tests": "assert x == 0"},
]


def _snapshot(result) -> dict:
    trace = result.trace.as_dict()
    layers = [{k: v for k, v in layer.items() if k not in ("seconds", "slowest_call_s", "calls_s")} for layer in trace["layers"]]
    snap = {"answer": result.answer, "text": result.text,
            "candidates": [{k: v for k, v in asdict(c).items() if k != "latency_s"} for c in result.candidates],
            "calls": trace["calls"], "cache_hits": trace["cache_hits"], "usd": round(trace["usd"], 12),
            "layers": layers}
    return json.loads(json.dumps(snap))  # tuples -> lists, as the golden file stores them


def test_every_layer_kind_matches_golden(fixtures):
    pipe = Pipeline(load_spec(fixtures / "all_layers.yaml"), LLMClient(FakeLLM()))
    got = [_snapshot(r) for r in pipe.batch(QUESTIONS)]
    if os.environ.get("ARCHSEARCH_UPDATE_GOLDEN"):
        GOLDEN.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
    assert got == json.loads(GOLDEN.read_text())
    kinds = [layer["kind"] for layer in got[0]["layers"]]
    assert kinds == ["generate", "generate", "critique", "rank", "verify", "test", "vote", "fuse"]


def test_second_run_is_served_from_the_cache(fixtures, tmp_path):
    spec = load_spec(fixtures / "all_layers.yaml")
    cache_url = f"sqlite:///{tmp_path / 'calls.sqlite'}"
    first_backend, second_backend = FakeLLM(), FakeLLM()
    first = Pipeline(spec, LLMClient(first_backend, CallCache(cache_url))).batch(QUESTIONS)
    second = Pipeline(spec, LLMClient(second_backend, CallCache(cache_url))).batch(QUESTIONS)
    assert first_backend.calls > 0
    assert second_backend.calls == 0
    assert [r.answer for r in first] == [r.answer for r in second]
    assert sum(r.trace.calls for r in second) == 0
    assert sum(r.trace.cache_hits for r in second) == sum(r.trace.calls + r.trace.cache_hits for r in first)


def test_ensembles_share_the_first_samples_of_a_pool(tmp_path):
    """n=2 and n=5 of the same generator: the first 2 samples are the same cached objects."""
    from archsearch.spec import loads_spec

    def spec(n):
        return loads_spec(f"""
schema_version: 1
name: pool
task: {{template: "{{question}}", extractor: {{kind: last_number}}}}
models: {{m: {{id: fake/m}}}}
layers: [{{kind: generate, params: {{model: m, n: {n}, temperature: 1.0}}}}]
""")
    backend = FakeLLM(answer_range=1000)
    client = LLMClient(backend, CallCache(f"sqlite:///{tmp_path / 'c.sqlite'}"))
    small = Pipeline(spec(2), client)("q")
    large = Pipeline(spec(5), client)("q")
    assert [c.text for c in large.candidates[:2]] == [c.text for c in small.candidates]
    assert backend.calls == 5
    assert large.trace.cache_hits == 2 and large.trace.calls == 3


def test_acall_inside_a_running_loop(fixtures):
    pipe = Pipeline(load_spec(fixtures / "all_layers.yaml"), LLMClient(FakeLLM()))

    async def main():
        return await pipe.acall({"question": "What is 1 + 1?", "visible_tests": "assert x == 2"})

    assert asyncio.run(main()).answer == pipe({"question": "What is 1 + 1?", "visible_tests": "assert x == 2"}).answer
