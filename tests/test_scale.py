"""No fixed size limits: a search over 1,000 search questions and 16 generators (a loopback
OpenAI-compatible endpoint) completes, reports with a posterior and exports."""

import json
import textwrap

from conftest import ROOT, run_cli


def test_a_thousand_questions_and_sixteen_generators(tmp_path, latency_server):
    exp = tmp_path / "big"
    exp.mkdir()
    rows = [{"id": f"q{i}", "question": f"What is {i} + {i % 7}?", "reference": str(i + i % 7),
             "split": "search" if i < 1000 else "test"} for i in range(1050)]
    (exp / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (exp / "task.yaml").write_text("name: big\ndata: data.jsonl\ncache: calls.sqlite\ntemplate: '{question}'\n"
                                   "extractor: last_number\nscorer: numeric\n")
    models = "\n".join(f"  m{i}: {{id: openai/m{i}, transport: http, params: {{api_base: 'http://127.0.0.1:{latency_server}/v1'}}, "
                       "price: {input_per_mtok: 0.1, output_per_mtok: 0.1}}" for i in range(16))
    (exp / "space.yaml").write_text(f"name: big\nmodels:\n{models}\n" + textwrap.dedent(f"""
        layers:
          - kind: generate
            params: {{model: {{choice: [{', '.join(f'm{i}' for i in range(16))}]}}, n: {{choice: [1, 2]}}, temperature: 0.7,
                     max_tokens: 16}}
          - {{kind: vote, optional: true}}
    """))
    (exp / "objective.yaml").write_text((ROOT / "objectives/default.yaml").read_text().replace(
        "halving: {first_rung: 10, margin: 0.1}", "halving: {first_rung: 1000, margin: 0.1}"))
    (exp / "experiment.yaml").write_text("space: space.yaml\nobjective: objective.yaml\ntrials: 6\n")
    out = run_cli("optimize", str(exp), "--concurrency", "64")
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Traceback" not in out.stderr and "Traceback" not in out.stdout
    report = json.loads((exp / "out" / "report.json").read_text())
    assert report["surrogate"]["modelled"] and report["choice"]["by_posterior"]
    assert report["final"]["questions"] == 50
    assert (exp / "out" / "pipeline.yaml").exists()
