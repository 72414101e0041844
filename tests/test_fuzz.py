"""Fuzz every user-facing file kind: each bad file ends in one line naming the file, exit code 2,
no traceback, nothing written. Run with -s to see the counts (files tried, distinct messages)."""

import contextlib
import copy
import io
import json
import re
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archsearch.cli import main as cli_main
from archsearch.errors import SpecError
from archsearch.objectives import load_objective
from archsearch.space import SearchSpace
from archsearch.spec import load_spec
from archsearch.tasks import Task

ROOT = Path(__file__).resolve().parent.parent
TOY = ROOT / "tests" / "fixtures" / "toy"
BASES = {
    "spec": ROOT / "tests/fixtures/all_layers.yaml",
    "task": TOY / "task.yaml",
    "space": ROOT / "spaces/archon.yaml",
    "objective": ROOT / "objectives/default.yaml",
}
TALLY = {"files": 0, "errors": 0, "accepted": 0, "messages": set()}

junk = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-10**30, max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30),
    st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, prefix + (i,))


@st.composite
def mutated(draw, kind):
    base = yaml.safe_load(BASES[kind].read_text())
    op = draw(st.sampled_from(["replace", "delete", "unknown_key", "deep", "garbage", "bomb", "truncate", "huge", "retag"]))
    if op == "garbage":
        return draw(st.binary(min_size=1, max_size=200))
    if op == "bomb":
        return b"a: &a [x, x, x, x]\nb: &b [*a, *a, *a, *a]\nc: &c [*b, *b, *b, *b]\nd: [*c, *c, *c, *c]\n"
    text = yaml.safe_dump(base, sort_keys=False)
    if op == "truncate":
        return text[: draw(st.integers(1, max(1, len(text) - 1)))].encode()
    if op == "retag":
        return ("!!python/object/apply:os.system ['touch /tmp/archsearch-fuzz-pwned']\n" + text).encode()
    doc = copy.deepcopy(base)
    paths = [p for p in _paths(doc) if p]
    path = draw(st.sampled_from(paths))
    parent = doc
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    if op == "replace":
        parent[last] = draw(junk)
    elif op == "delete":
        parent.pop(last) if isinstance(parent, dict) else parent.pop(last)
    elif op == "unknown_key":
        target = parent[last] if isinstance(parent[last], dict) else doc
        target[draw(st.sampled_from(["colour", "kep", "model_name", "n_samples"]))] = draw(junk)
    elif op == "deep":
        # 400 is past the recursion limit ("nesting too deep"); PyYAML's scanner is quadratic in flow
        # depth, so 5,000 cost a second a parse and most of this test's time for the same error
        depth = draw(st.sampled_from([30, 200, 400]))
        text = yaml.safe_dump(doc, sort_keys=False).replace("schema_version", "deep: " + "[" * depth + "]" * depth + "\nschema_version", 1)
        return (text if "deep:" in text else "deep: " + "[" * depth + "]" * depth + "\n" + text).encode()
    elif op == "huge":
        parent[last] = 10 ** draw(st.integers(20, 400))
    try:
        return yaml.safe_dump(doc, sort_keys=False).encode()
    except RecursionError:
        return b"[" * 5000


def _check_message(message: str, file: Path) -> None:
    assert "\n" not in message and "Traceback" not in message
    assert str(file) in message, message
    TALLY["messages"].add(re.sub(r"\d+", "N", message.replace(str(file), "FILE"))[:120])


LOADERS = {"spec": load_spec, "task": Task, "space": SearchSpace, "objective": load_objective}


def _one(kind: str, content: bytes, tmp: Path) -> None:
    file = tmp / f"fuzz-{kind}.yaml"
    file.write_bytes(content)
    before = sorted(p.name for p in tmp.iterdir())
    TALLY["files"] += 1
    try:
        LOADERS[kind](file)
        TALLY["accepted"] += 1
        rejected = False
    except SpecError as exc:
        TALLY["errors"] += 1
        _check_message(str(exc), file)
        rejected = True
    # and through the CLI, which must never write or trace back
    if kind in ("spec", "task"):
        spec, task = (file, TOY / "task.yaml") if kind == "spec" else (ROOT / "tests/fixtures/all_layers.yaml", file)
        _cli_fails_in_one_line(["evaluate", str(spec), "--task", str(task), "--split", "no-such-split"])
    elif rejected:  # a valid space or objective would start a real search
        flag = "--space" if kind == "space" else "--objective"
        _cli_fails_in_one_line(["optimize", str(ROOT / "experiments/humaneval-local"), flag, str(file),
                                "--out", str(tmp / "out")])
    assert sorted(p.name for p in tmp.iterdir()) == before  # nothing written
    assert not Path("/tmp/archsearch-fuzz-pwned").exists()


def _cli_fails_in_one_line(argv: list[str]) -> None:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = cli_main(argv)
    assert code == 2, err.getvalue()
    lines = err.getvalue().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("archsearch: error: "), lines
    assert "Traceback" not in err.getvalue()


@pytest.mark.parametrize("kind", list(BASES))
def test_fuzzed_files_fail_cleanly(kind, tmp_path_factory):
    tmp = tmp_path_factory.mktemp(kind)
    (tmp / "data.jsonl").write_bytes((TOY / "data.jsonl").read_bytes())  # the task's data, beside it

    @settings(max_examples=250, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    @given(content=mutated(kind))
    def run(content):
        _one(kind, content, tmp)

    run()


def test_fuzz_tally():
    print(f"\nfuzz: {TALLY['files']} files tried, {TALLY['errors']} rejected with one line, "
          f"{TALLY['accepted']} still valid, {len(TALLY['messages'])} distinct messages")
    assert TALLY["files"] >= 1000
    (Path(__file__).parent / ".fuzz-tally.json").write_text(json.dumps(
        {k: (sorted(v) if isinstance(v, set) else v) for k, v in TALLY.items()}, indent=1))
