"""Checking candidate programs: the one recipe the hidden-test scorer, the ``test`` layer, the
behaviour ``vote`` and the surrogate's observer all share, so they can never disagree.

A candidate answer becomes a program through the task's template (HumanEval: ``{prompt}\\n{answer}``).
Visible tests are assert statements; their left-hand sides (``f(x)`` of ``assert f(x) == y``) are
the probes whose values say how a program behaves, so two programs that differ in text but return
the same values count as one answer in a vote (the AlphaCode / CodeT clustering idea).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from .sandbox import ProgramRun, SandboxLimits, run_program_memo

_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def fill(template: str, **values: Any) -> str:
    """Replace the ``{name}`` placeholders that ``values`` names, in one pass: other braces (code,
    JSON) and braces inside the values stay exactly as they are."""
    return _PLACEHOLDER.sub(lambda m: str(values[m[1]]) if m[1] in values else m[0], template)


def candidate_program(template: str, fields: dict[str, Any], answer: str) -> str:
    return fill(template, **{**fields, "answer": answer})


def split_tests(code: str) -> tuple[str, tuple[str, ...]]:
    """(setup, tests): top-level asserts are tests, everything else is setup they may need."""
    return _parsed_tests(code)[:2]


# A question's tests are checked against every sample of every pipeline: parsing them each time was
# a fifth of a replay over the HumanEval pool. A pure function of the text, so a bounded memo is safe.
@lru_cache(maxsize=4096)
def _parsed_tests(code: str) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    """(setup, tests, each test's probe)."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return "", (), ()
    setup = [ast.unparse(n) for n in tree.body if not isinstance(n, ast.Assert)]
    tests = tuple(ast.unparse(n) for n in tree.body if isinstance(n, ast.Assert))
    return "\n".join(setup), tests, tuple(probe_of(t) for t in tests)


def _literal(node: ast.expr) -> bool:
    try:
        ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True


def parse_model_tests(text: str, entry_point: str, limit: int = 100) -> tuple[list[str], int]:
    """Strictly parse tests a model wrote: only ``assert entry_point(literal, ...) == literal``
    statements survive (code blocks first, else the whole reply); anything else -- imports, loops,
    definitions, other calls, a condition that is not ``==`` -- is dropped and counted. So nothing a
    model writes runs but a call of the function under test on plain values. (kept, dropped)."""
    blocks = re.findall(r"```(?:python|py)?[ \t]*\n(.*?)```", text, re.DOTALL) or [text]
    kept: list[str] = []
    dropped = 0
    for line in (ln.strip() for block in blocks for ln in block.splitlines()):
        if not line or line.startswith("#"):
            continue
        try:
            tree = ast.parse(line)
        except SyntaxError:
            dropped += 1
            continue
        node = tree.body[0] if len(tree.body) == 1 else None
        cond = node.test if isinstance(node, ast.Assert) and node.msg is None else None
        if not (isinstance(cond, ast.Compare) and len(cond.ops) == 1 and isinstance(cond.ops[0], ast.Eq)
                and isinstance(cond.left, ast.Call) and isinstance(cond.left.func, ast.Name)
                and cond.left.func.id == entry_point and not cond.left.keywords
                and all(_literal(a) for a in cond.left.args) and _literal(cond.comparators[0])):
            dropped += 1
            continue
        test = ast.unparse(node)
        if test not in kept and len(kept) < limit:
            kept.append(test)
    return kept, dropped


def probe_of(test: str) -> str:
    """The expression whose value a test checks: ``f(x)`` for ``assert f(x) == y``, else the test's condition."""
    node = ast.parse(test).body[0]
    assert isinstance(node, ast.Assert)
    cond = node.test
    if isinstance(cond, ast.Compare) and len(cond.ops) == 1 and isinstance(cond.ops[0], ast.Eq):
        return ast.unparse(cond.left)
    return ast.unparse(cond)


@dataclass(frozen=True)
class VisibleCheck:
    """A candidate run against a question's visible tests."""

    rate: float                          # share of tests passed (0 if the run did not complete)
    behaviour: tuple[str, ...] | None    # the probes' values; None when every probe raised
    run: ProgramRun


async def check_visible(template: str, fields: dict[str, Any], answer: str, visible_tests: str,
                        limits: SandboxLimits | None, memo: dict | None) -> VisibleCheck | None:
    """Run one answer against visible tests; None when there are no tests to run."""
    setup, tests, probes = _parsed_tests(visible_tests)
    if not tests:
        return None
    program = candidate_program(template, fields, answer)
    if setup:
        program = f"{program}\n\n{setup}"
    run = await run_program_memo(program, tests, probes, limits, memo)
    behaviour = run.outputs if run.completed and any(not o.startswith("!") for o in run.outputs) else None
    return VisibleCheck(run.pass_rate, behaviour, run)


async def check_hidden(template: str, fields: dict[str, Any], answer: str, tests: str, call: str,
                       limits: SandboxLimits | None, memo: dict | None, requires: tuple | list = ()) -> bool:
    """The hidden-test verdict: the test block and its call ran to the end without raising."""
    program = candidate_program(template, fields, answer)
    block = f"{tests}\n\n{fill(call, **fields)}\n"
    run = await run_program_memo(program, [block], (), limits, memo, requires)
    return run.ok
