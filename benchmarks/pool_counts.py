"""How many recorded calls each shipped call cache holds, per model and role (for the README).

    python benchmarks/pool_counts.py [experiments/*/calls.sqlite ...]
"""

from __future__ import annotations

import json
import sqlite3
import sys
from collections import Counter
from pathlib import Path

MARKERS = (("Proposed answer:", "verify"), ("Candidate answers from other assistants", "fuse"),
           ("Candidate answers:", "rank"), ("Candidate answer:", "critique"))


def role_of(request: str) -> str:
    text = json.loads(request)["messages"][-1]["content"]
    if not text.startswith("Question:"):
        return "generate"
    return next((role for marker, role in MARKERS if marker in text), "other")


def counts(path: Path) -> Counter:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        rows = db.execute("select model, request from archsearch_llm_calls").fetchall()
    return Counter((model, role_of(request)) for model, request in rows)


def main() -> None:
    paths = [Path(p) for p in sys.argv[1:]] or sorted(Path("experiments").glob("*/calls.sqlite"))
    for path in paths:
        table = counts(path)
        print(f"{path}: {sum(table.values())} calls")
        for (model, role), n in sorted(table.items()):
            print(f"  {model:28s} {role:9s} {n:6d}")


if __name__ == "__main__":
    main()
