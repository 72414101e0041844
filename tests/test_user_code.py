"""Bring your own task: records from CSV, Parquet or a Hugging Face datasets folder; your own
extractor and scorer as module:function; your own technique through the entry-point group."""

import json
import shutil
import textwrap
from pathlib import Path

import pytest

from archsearch.errors import SpecError
from archsearch.tasks import Task

HERE = Path(__file__).resolve().parent
ROWS = [{"id": f"q{i}", "question": f"What is {i} + {i + 1}?", "reference": str(2 * i + 1),
         "split": "search" if i < 12 else "test"} for i in range(20)]


def _task(folder: Path, data: str, scorer: str = "numeric", extractor: str = "last_number") -> Path:
    (folder / "task.yaml").write_text(f"name: mine\ndata: {data}\ncache: calls.sqlite\ntemplate: '{{question}}'\n"
                                      f"extractor: {extractor}\nscorer: {scorer}\n")
    return folder / "task.yaml"


def test_records_from_csv_and_parquet(tmp_path):
    import csv

    with (tmp_path / "data.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(ROWS[0]))
        writer.writeheader()
        writer.writerows(ROWS)
    assert len(Task(_task(tmp_path, "data.csv")).split("search")) == 12
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(ROWS), tmp_path / "data.parquet")
    task = Task(_task(tmp_path, "data.parquet"))
    assert [r.id for r in task.split("test")] == [f"q{i}" for i in range(12, 20)]
    (tmp_path / "bad.parquet").write_text("not parquet")
    with pytest.raises(SpecError, match="not a readable Parquet file"):
        Task(_task(tmp_path, "bad.parquet"))


def test_records_from_a_local_hugging_face_datasets_folder(tmp_path):
    import datasets
    rows = [{k: v for k, v in r.items() if k != "split"} for r in ROWS]
    dd = datasets.DatasetDict({"search": datasets.Dataset.from_list(rows[:12]),
                               "test": datasets.Dataset.from_list(rows[12:])})
    dd.save_to_disk(str(tmp_path / "hf"))
    task = Task(_task(tmp_path, "hf"))
    assert len(task.split("search")) == 12 and task.split("test")[0].reference == "25"


def test_your_own_extractor_and_scorer(tmp_path):
    (tmp_path / "my_task.py").write_text(textwrap.dedent("""
        import re

        def extract(text):
            found = re.findall(r"-?\\d+", text)
            return found[-1] if found else None

        async def score(answer, fields, reference):
            return float(int(answer) == int(reference))
    """))
    (tmp_path / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    task = Task(_task(tmp_path, "data.jsonl", scorer="my_task:score", extractor="my_task:extract"))
    import asyncio

    assert task.extractor("so it is 7") == "7"
    assert asyncio.run(task.scorer.score("3", task.split("search")[1])) == 1.0
    with pytest.raises(SpecError, match="expected 'module:function'"):
        Task(_task(tmp_path, "data.jsonl", scorer="'not a reference:'"))


def test_optimize_on_a_csv_task_with_a_module_function_scorer(tmp_path, latency_server):
    from conftest import ROOT, run_cli

    exp = tmp_path / "exp"
    exp.mkdir()
    import csv

    with (exp / "data.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(ROWS[0]))
        writer.writeheader()
        writer.writerows(ROWS)
    (exp / "scoring.py").write_text("def score(answer, fields, reference):\n    return int(answer) % 2 == int(reference) % 2\n")
    _task(exp, "data.csv", scorer="scoring:score")
    (exp / "space.yaml").write_text(textwrap.dedent(f"""
        name: s
        models:
          m: {{id: openai/fixed, transport: http, params: {{api_base: "http://127.0.0.1:{latency_server}/v1"}},
              price: {{input_per_mtok: 0.1, output_per_mtok: 0.1}}}}
        layers:
          - {{kind: generate, params: {{model: m, n: {{int: [1, 3]}}, temperature: 0.7, max_tokens: 32}}}}
          - {{kind: vote, optional: true}}
    """))
    (exp / "experiment.yaml").write_text(f"space: space.yaml\nobjective: {ROOT / 'objectives/default.yaml'}\ntrials: 5\n")
    out = run_cli("optimize", str(exp), cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    exported = (exp / "out" / "pipeline.yaml").read_text()
    assert "function: scoring:score" in exported
    report = json.loads((exp / "out" / "report.json").read_text())
    assert report["front"] and report["final"]["questions"] == 8 and report["final_split"] == "test"


def _plugin_site(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    shutil.copytree(HERE / "example_plugin" / "archsearch_example_plugin", site / "archsearch_example_plugin")
    info = site / "archsearch_example_plugin-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: archsearch-example-plugin\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text("[archsearch.techniques]\ndedupe = archsearch_example_plugin:Dedupe\n")
    return site


def test_a_technique_registered_through_the_entry_point_runs_in_a_spec(tmp_path, latency_server):
    site = _plugin_site(tmp_path)
    spec = tmp_path / "spec.yaml"
    spec.write_text(textwrap.dedent(f"""
        schema_version: 1
        name: with-plugin
        task: {{template: "{{question}}", extractor: {{kind: last_number}}}}
        models:
          m: {{id: openai/fixed, transport: http, params: {{api_base: "http://127.0.0.1:{latency_server}/v1"}}}}
        layers:
          - {{kind: generate, params: {{model: m, n: 4, temperature: 0.7}}}}
          - {{kind: dedupe, params: {{keep: 2}}}}
    """))
    env = {"PYTHONPATH": str(site)}
    from conftest import run_cli

    out = run_cli("run", str(spec), "--question", "What is 1 + 2?", "--trace", str(tmp_path / "t.jsonl"), env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    trace = json.loads((tmp_path / "t.jsonl").read_text())
    assert [layer["kind"] for layer in trace["layers"]] == ["generate", "dedupe"]
    assert len(trace["layers"][1]["outputs"]) == 2  # four samples, at most two distinct answers kept
    without = run_cli("run", str(spec), "--question", "What is 1 + 2?")
    assert without.returncode == 2 and "unknown layer kind 'dedupe'" in without.stderr


COUNT = """
import sys
from archsearch.space import calls_per_question
from archsearch.spec import load_spec
print(calls_per_question(load_spec(sys.argv[1])))
"""


def test_a_plugin_technique_describes_itself_and_its_calls_count(tmp_path, latency_server):
    """In a search: the front table shows the plugin's own description, the report says its layer is
    not modelled (it names no surrogate step: TPE searched), and the space counts the calls around it
    as the plugin says (two candidates left after it: two verdicts)."""
    import os
    import subprocess
    import sys

    from conftest import run_cli

    site = _plugin_site(tmp_path)
    exp = tmp_path / "exp"
    exp.mkdir()
    (exp / "data.jsonl").write_text((HERE / "fixtures/toy/data.jsonl").read_text())
    (exp / "task.yaml").write_text("name: t\ndata: data.jsonl\ncache: calls.sqlite\ntemplate: '{question}'\n"
                                   "extractor: last_number\nscorer: numeric\n")
    model = (f'{{id: openai/fixed, transport: http, params: {{api_base: "http://127.0.0.1:{latency_server}/v1"}}, '
             'price: {input_per_mtok: 1, output_per_mtok: 1}}')
    (exp / "space.yaml").write_text(textwrap.dedent(f"""
        name: s
        models: {{m: {model}}}
        layers:
          - {{kind: generate, params: {{model: m, n: {{choice: [1, 4]}}, temperature: 0.7, max_tokens: 16}}}}
          - {{kind: dedupe, params: {{keep: 2}}}}
          - {{kind: verify, optional: true, params: {{model: m, max_tokens: 16}}}}
    """))
    (exp / "experiment.yaml").write_text(f"space: space.yaml\nobjective: {HERE.parent / 'objectives/default.yaml'}\ntrials: 8\n")
    out = run_cli("optimize", str(exp), cwd=tmp_path, env={"PYTHONPATH": str(site), "COLUMNS": "250"})
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads((exp / "out" / "report.json").read_text())
    assert report["surrogate"]["uncovered_layers"] == ["dedupe"]
    assert "dedupe to 2" in out.stdout   # the front table (a cell may wrap the rest)
    assert all("dedupe to 2 distinct answers" in o["pipeline"] for o in report["options"])
    spec = tmp_path / "counted.yaml"
    spec.write_text(textwrap.dedent("""
        schema_version: 1
        name: c
        task: {template: "{question}", extractor: {kind: last_number}}
        models: {m: {id: fake/m}}
        layers: [{kind: generate, params: {model: m, n: 4}}, {kind: dedupe, params: {keep: 2}}, {kind: verify, params: {model: m}}]
    """))
    counted = subprocess.run([sys.executable, "-c", COUNT, str(spec)], capture_output=True, text=True,
                             env={**os.environ, "PYTHONPATH": str(site)})
    assert counted.stdout.strip() == "6.0", counted.stderr[-1000:]
