"""Scoring integrity: answers that exit early, hook the exit, fake the harness's output, read the
environment or kill their parent never count as passing -- for the hidden-test scorer nor for the
visible-test layer -- while the honest answer passes both."""

import asyncio

import pytest
from hostile_corpus import HONEST, HOSTILE

from archsearch.programs import check_visible
from archsearch.sandbox import SandboxLimits
from archsearch.tasks.scorers import PythonTests
from archsearch.tasks.task import Record

PROMPT = 'def add(a, b):\n    """Return a + b.\n    >>> add(1, 2)\n    3\n    """\n'
HIDDEN = "def check(candidate):\n    assert candidate(2, 3) == 5\n    assert candidate(-1, 1) == 0\n"
VISIBLE = "assert (add(1, 2)) == (3)\nassert (add(0, 0)) == (0)"
RECORD = Record(id="add", fields={"prompt": PROMPT, "entry_point": "add"}, reference=HIDDEN, text=PROMPT,
                visible_tests=VISIBLE)
SCORER = PythonTests(program="{prompt}\n{answer}", call="check({entry_point})", timeout_s=4)
LIMITS = SandboxLimits(timeout_s=4)


def _both(answer: str) -> tuple[float, float]:
    async def run():
        hidden = await SCORER.score(answer, RECORD)
        visible = await check_visible(SCORER.program, RECORD.fields, answer, VISIBLE, LIMITS, None)
        return hidden, visible.rate

    return asyncio.run(run())


def test_the_honest_answer_passes_both():
    assert _both(HONEST) == (1.0, 1.0)


def test_the_corpus_is_large_enough():
    assert len(HOSTILE) >= 20


@pytest.mark.parametrize("isolation", ["host's strongest", "guarded"])
@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_answer_scores_zero(name, isolation, monkeypatch):
    if isolation == "guarded":  # what a host without namespaces (or without root) gets
        import archsearch.sandbox

        monkeypatch.setattr(archsearch.sandbox, "_strong_isolation_available", lambda: False)
    hidden, visible = _both(HOSTILE[name])
    assert hidden == 0.0, f"{name}: counted as passing the hidden tests"
    assert visible < 1.0, f"{name}: counted as passing the visible tests"
