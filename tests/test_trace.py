"""`archsearch run --trace` and Pipeline(detail=True): each layer's inputs and outputs, which
candidates fed each output, tokens, dollars and seconds -- enough to see why it answered that."""

import json

from archsearch.llm import LLMClient
from archsearch.pipeline import Pipeline
from archsearch.spec import load_spec
from archsearch.testing import FakeLLM


def test_detail_trace_links_every_output_to_what_fed_it(fixtures):
    pipe = Pipeline(load_spec(fixtures / "all_layers.yaml"), LLMClient(FakeLLM()))
    result = pipe({"question": "What is 2 + 3?"}, detail=True)
    layers = result.trace.layers
    assert [t.kind for t in layers] == ["generate", "generate", "critique", "rank", "verify", "test", "vote", "fuse"]
    assert [t.step for t in layers][:2] == [0, 0]            # the two generators ran as one step
    ids = {o["id"] for t in layers for o in t.outputs}
    for t in layers:
        assert t.inputs is not None and all(i in ids for i in t.inputs)
        for o in t.outputs:
            assert set(o["parents"]) <= ids
    generated = [o["id"] for t in layers[:2] for o in t.outputs]
    assert generated == ["0.0", "0.1", "0.2", "0.3", "1.0", "1.1"]
    vote, fuse = layers[6], layers[7]
    assert vote.outputs[0]["parents"] and set(vote.outputs[0]["parents"]) <= set(vote.inputs)
    assert all(o["parents"] == fuse.inputs for o in fuse.outputs)   # a fused answer was made from all its inputs
    assert layers[2].outputs[0]["critique"]                         # what the critic said is kept
    assert all("verdicts" in o for o in layers[4].outputs)
    assert all(t.tokens_in >= 0 and t.seconds >= 0 for t in layers) and result.trace.cost_usd > 0


def test_run_writes_a_jsonl_trace(tmp_path, root, latency_server):
    from conftest import run_cli

    spec = tmp_path / "spec.yaml"
    spec.write_text(f"""
schema_version: 1
name: traced
task: {{template: "{{question}}", extractor: {{kind: last_number}}}}
models:
  m: {{id: openai/fixed, transport: http, params: {{api_base: "http://127.0.0.1:{latency_server}/v1"}}}}
layers:
  - {{kind: generate, params: {{model: m, n: 3, temperature: 0.7}}}}
  - {{kind: vote}}
""")
    (tmp_path / "in.jsonl").write_text('{"id": "a", "question": "What is 1 + 1?"}\n{"id": "b", "question": "What is 2 + 2?"}\n')
    out = run_cli("run", str(spec), "--input", str(tmp_path / "in.jsonl"), "--trace", str(tmp_path / "t.jsonl"))
    assert out.returncode == 0, out.stderr[-2000:]
    rows = [json.loads(line) for line in (tmp_path / "t.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == ["a", "b"]
    assert [layer["kind"] for layer in rows[0]["layers"]] == ["generate", "vote"]
    assert len(rows[0]["layers"][0]["outputs"]) == 3 and rows[0]["layers"][1]["inputs"] == ["0.0", "0.1", "0.2"]
