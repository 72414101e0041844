"""One table of every sampler benchmark in ``benchmarks/results/*-samplers-*.json`` (written by
``search_benchmark.py samplers``): per space, the median paid calls and trials to a pipeline
within 1 point of the best, how many of the seeds reached it, and the floors no sampler can beat.
The last column holds by construction: the floor over TPE's median, the lowest surrogate / TPE ratio
any sampler could reach on that space, even one told the target in advance.

    python benchmarks/sampler_table.py
"""

from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
SAMPLERS = ("surrogate", "tpe", "random")


def cell(run: dict | None) -> str:
    if not run:
        return "-"
    return f"{run['median_calls']:g} ({run['median_trials']:g} tr, {run['reached']}/{len(run['runs'])})"


def main() -> None:
    print("| pool / space | pipelines | pool calls | target | floor | after baseline | "
          + " | ".join(SAMPLERS) + " | surrogate / TPE | floor / TPE |")
    print("|" + "---|" * (8 + len(SAMPLERS)))
    for path in sorted(RESULTS.glob("*-samplers-*.json")):
        r = json.loads(path.read_text())
        sur, tpe = r.get("surrogate"), r.get("tpe")
        ratio = f"{sur['median_calls'] / tpe['median_calls']:.2f}" if sur and tpe else "-"
        bound = f"{r['floor'] / tpe['median_calls']:.2f}" if tpe and "floor" in r else "-"
        print(f"| {path.stem.replace('-samplers-', ' / ')} | {r['pipelines']} | {r['pool_calls']} | {r['target']:.3f} | "
              f"{r.get('floor', '-')} | {r.get('floor_after_baseline', '-')} | "
              + " | ".join(cell(r.get(s)) for s in SAMPLERS) + f" | {ratio} | {bound} |")


if __name__ == "__main__":
    main()
