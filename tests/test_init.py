"""``archsearch init`` then ``optimize --estimate`` then the search itself, as a new user runs them:
over a loopback OpenAI-compatible endpoint (real HTTP through litellm, no model weights)."""

import json

import pytest
from conftest import run_cli

from archsearch.errors import SpecError
from archsearch.init import InitRequest, init


def _data(folder, rows: int = 40):
    lines = ["question,answer"] + [f"What is {i} + {2 * i}?,{3 * i}" for i in range(rows)]
    path = folder / "q.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_init_writes_a_runnable_experiment_and_refuses_to_overwrite(tmp_path):
    data = _data(tmp_path)
    init(InitRequest(tmp_path / "exp", data, ["openai/gpt-4o-mini", "openai/gpt-4.1-nano"], api_base="http://x/v1"))
    from archsearch.experiment import Experiment
    from archsearch.tasks import Task

    exp = Experiment(tmp_path / "exp")
    task = Task(exp.path(exp.config.task))
    sizes = {name: len(task.split(name)) for name in ("search", "select", "final")}
    assert sizes == {"search": 20, "select": 10, "final": 10}
    assert not set(r.id for r in task.split("search")) & set(r.id for r in task.split("final"))
    space = (tmp_path / "exp" / "space.yaml").read_text()
    assert "gpt-4o-mini" in space and "http://x/v1" in space and "price" in space   # litellm's price map
    assert "usd" in (tmp_path / "exp" / "objective.yaml").read_text()   # priced models: a dollar objective and budget
    with pytest.raises(SpecError, match="never overwrites"):
        init(InitRequest(tmp_path / "exp", data, ["openai/gpt-4o-mini"]))


def test_init_names_a_missing_field(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"q": "a", "a": "1"}\n')
    with pytest.raises(SpecError, match="cannot tell which field is the question"):
        init(InitRequest(tmp_path / "exp", path, ["openai/gpt-4o-mini"]))


def test_estimate_then_search_on_a_loopback_endpoint(tmp_path, latency_server):
    data = _data(tmp_path)
    env = {"OPENAI_API_KEY": "sk-loopback"}
    made = run_cli("init", str(tmp_path / "exp"), "--data", str(data), "--model", "openai/gpt-4o-mini",
                   "--api-base", f"http://127.0.0.1:{latency_server}/v1", env=env, cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    (tmp_path / "exp" / "experiment.yaml").write_text(
        (tmp_path / "exp" / "experiment.yaml").read_text().replace("trials: 20", "trials: 2"))
    estimated = run_cli("optimize", "exp", "--estimate", env=env, cwd=tmp_path)
    assert estimated.returncode == 0, estimated.stderr
    assert "paid calls" in estimated.stderr
    assert not (tmp_path / "exp" / "calls.sqlite").exists() or _paid(tmp_path / "exp" / "calls.sqlite") == 0  # no model called
    est = json.loads((tmp_path / "exp" / "out" / "estimate.json").read_text())["paid_calls"]
    searched = run_cli("optimize", "exp", env=env, cwd=tmp_path)
    assert searched.returncode == 0, searched.stderr
    spent = int(searched.stderr.split("predicted, ")[1].split(" spent")[0])
    assert est["low90"] <= spent <= est["high90"] * 1.1, (est, spent)

    # the report to share: one page, nothing fetched, the front on the objective's cost axis (dollars)
    out = tmp_path / "exp" / "out"
    page = (out / "report.html").read_text()
    assert "<script" not in page and "src=" not in page and "href=" not in page
    assert "dollars per question" in page and "The choice" in page and "Example questions" in page
    report = json.loads((out / "report.json").read_text())
    assert report["choice"]["chosen"]["pipeline"] in page
    assert f"final split, touched once: <b>{report['final']['accuracy']:.3f}</b>" in page
    (out / "report.html").unlink()
    (out / "front.png").unlink()
    redrawn = run_cli("report", str(out), cwd=tmp_path)
    assert redrawn.returncode == 0, redrawn.stderr
    assert (out / "report.html").read_text() == page and (out / "front.png").stat().st_size > 1000
    missing = run_cli("report", str(tmp_path), cwd=tmp_path)
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1 and "report.json" in missing.stderr


def _paid(path) -> int:
    import sqlite3

    with sqlite3.connect(path) as db:
        return db.execute("select count(*) from archsearch_llm_calls").fetchone()[0]
