"""CLI: bad input gives one line on stderr and exit code 2, never a traceback."""

import pytest
from conftest import run_cli

GOOD_SPEC = "experiments/gsm8k-local/baseline.yaml"
GOOD_TASK = "experiments/gsm8k-local/task.yaml"


def _bad(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("text, expect", [
    ("schema_version: 1\nname: x\nunknown_key: 1\n", "unknown_key: unknown key"),
    ("schema_version: 7\n", "schema_version: unknown version 7"),
    ("schema_version: 1\nname: [unclosed\n", "invalid YAML"),
    ("schema_version: 1\nname: x\ntask: {template: '{q}', extractor: last_number}\nmodels: {m: {id: a}}\n"
     "layers: [{kind: teleport}]\n", "layers[0].kind: unknown layer kind 'teleport'"),
    ("schema_version: 1\nname: x\ntask: {template: '{q}', extractor: last_number}\nmodels: {m: {id: a}}\n"
     "layers: [{kind: generate, params: {model: m, n: lots}}]\n", "layers[0].params.n: Input should be a valid integer"),
])
def test_malformed_spec_on_the_cli(tmp_path, text, expect):
    spec = _bad(tmp_path, "spec.yaml", text)
    result = run_cli("run", spec, "--question", "hi")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and spec in lines[0] and expect in lines[0]


@pytest.mark.parametrize("text, expect", [
    ("name: t\ndata: data.jsonl\ntemplate: '{question}'\nextractor: last_number\nscorer: numeric\nextra: 1\n",
     "extra: unknown key"),
    ("name: t\ndata: data.jsonl\ntemplate: '{question}'\nextractor: last_number\nscorer: {kind: numeric, abs_tol: -1}\n",
     "scorer.abs_tol: Input should be greater than or equal to 0"),
    ("name: t\ndata: missing.jsonl\ntemplate: '{question}'\nextractor: last_number\nscorer: numeric\n",
     "data: cannot read data"),
    ("name: t\ndata: data.jsonl\ntemplate: '{nope}'\nextractor: last_number\nscorer: numeric\n",
     "field 'nope' is not in the record"),
])
def test_malformed_task_on_the_cli(tmp_path, text, expect):
    (tmp_path / "data.jsonl").write_text('{"id": 1, "question": "1+1?", "reference": "2", "split": "test"}\n')
    task = _bad(tmp_path, "task.yaml", text)
    result = run_cli("evaluate", GOOD_SPEC, "--task", task)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and expect in lines[0], lines


def test_broken_data_line_names_the_line(tmp_path):
    (tmp_path / "data.jsonl").write_text('{"id": 1, "question": "q", "reference": "2"}\n{not json\n')
    task = _bad(tmp_path, "task.yaml", "name: t\ndata: data.jsonl\ntemplate: '{question}'\n"
                                       "extractor: last_number\nscorer: numeric\n")
    result = run_cli("evaluate", GOOD_SPEC, "--task", task)
    assert result.returncode == 2 and "data.jsonl: line 2: invalid JSON" in result.stderr


def test_missing_spec_file():
    result = run_cli("run", "nope.yaml", "--question", "x")
    assert result.returncode == 2 and result.stderr.strip() == "archsearch: error: nope.yaml: cannot read file (No such file or directory)"


def test_unknown_split():
    result = run_cli("evaluate", GOOD_SPEC, "--task", GOOD_TASK, "--split", "dev")
    assert result.returncode == 2 and "no records in split 'dev' (have: demos, final, search, select)" in result.stderr


def test_compile_cache_folder_from_the_environment(tmp_path):
    from archsearch.optimize.cli import compile_cache_folder

    assert compile_cache_folder({"ARCHSEARCH_COMPILE_CACHE": "off"}) is None
    assert compile_cache_folder({"ARCHSEARCH_COMPILE_CACHE": str(tmp_path)}) == str(tmp_path)
    assert compile_cache_folder({"XDG_CACHE_HOME": str(tmp_path)}) == str(tmp_path / "archsearch" / "jax")
