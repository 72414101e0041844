import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
sys.path.insert(0, str(ROOT / "bayes"))   # the surrogate's science (closed forms, synthetic searches): not the package's


@pytest.fixture(scope="session")
def fixtures() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None):
    return run_python("-m", "archsearch.cli", *args, cwd=cwd, env=env)


def run_python(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 600):
    """``python *args`` in a process of its own, on this checkout's code."""
    import subprocess

    env = {**os.environ, **(env or {})}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in [env.get("PYTHONPATH")] if p])
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=cwd or ROOT, env=env,
                          timeout=timeout)


@pytest.fixture
def fault_server():
    """A fault-injecting OpenAI-compatible server on a loopback port, run in a thread."""
    from archsearch.testing.fault_server import make_app, schedule
    from archsearch.testing.net import serving

    plan = ["401_echo"] + schedule(seed=2, n=5000, failure_rate=0.15, kinds=("429", "500", "malformed"))
    with serving(make_app(plan)) as port:
        yield port


def http_experiment(folder: Path, port: int, trials: int, price_per_mtok: float = 1.0) -> Path:
    """An experiment whose model is the loopback server (real HTTP, no model weights)."""
    import textwrap

    folder.mkdir()
    (folder / "data.jsonl").write_text((FIXTURES / "toy/data.jsonl").read_text())
    (folder / "task.yaml").write_text("name: t\ndata: data.jsonl\ncache: calls.sqlite\ntemplate: '{question}'\n"
                                      "extractor: last_number\nscorer: numeric\n")
    (folder / "space.yaml").write_text(textwrap.dedent(f"""
        name: s
        models:
          m: {{id: openai/fault, transport: http, params: {{api_base: "http://127.0.0.1:{port}/v1"}},
              price: {{input_per_mtok: {price_per_mtok}, output_per_mtok: {price_per_mtok}}}}}
        layers:
          - {{kind: generate, params: {{model: m, n: {{int: [1, 3]}}, temperature: 0.7, max_tokens: 32}}}}
          - {{kind: vote, optional: true}}
    """))
    (folder / "experiment.yaml").write_text(
        f"task: task.yaml\nspace: space.yaml\nobjective: {ROOT / 'objectives/default.yaml'}\ntrials: {trials}\n")
    return folder


@pytest.fixture
def latency_server():
    """A well-behaved OpenAI-compatible loopback server answering after 10 ms, run in a thread."""
    from archsearch.testing.fixed_latency_server import make_app
    from archsearch.testing.net import serving

    with serving(make_app(0.01)) as port:
        yield port
