"""The shipped searches, side by side: wall time and paid calls of ``archsearch optimize`` on each
shipped experiment with the surrogate (the default sampler) and with TPE, each in a fresh output
folder (a new study; the shipped call caches make every call a cache hit), run one after the other
on the same machine.

    python benchmarks/default_searches.py [--samplers surrogate,tpe] [--experiments humaneval-local,...]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXPERIMENTS = ("humaneval-local", "humaneval-archon", "gsm8k-local")


def run(experiment: str, sampler: str) -> dict:
    out = Path(tempfile.mkdtemp())
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "archsearch.cli", "optimize", str(ROOT / "experiments" / experiment),
                           "--sampler", sampler, "--out", str(out)], capture_output=True, text=True,
                          env={**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"})
    seconds = time.perf_counter() - start
    report = json.loads((out / "report.json").read_text()) if (out / "report.json").exists() else {}
    chosen = report.get("choice", {}).get("chosen", {})
    final = report.get("final") or {}
    paid = re.findall(r"paid calls (\d+)", done.stderr)
    return {"experiment": experiment, "sampler": sampler, "seconds": round(seconds, 1), "returncode": done.returncode,
            "paid_calls": int(paid[-1]) if paid else None, "chosen": chosen.get("pipeline"),
            "final_accuracy": final.get("accuracy"), "stderr_tail": done.stderr[-400:] if done.returncode else ""}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--samplers", default="surrogate,tpe")
    p.add_argument("--experiments", default=",".join(EXPERIMENTS))
    args = p.parse_args()
    rows = []
    for experiment in args.experiments.split(","):
        for sampler in args.samplers.split(","):
            rows.append(run(experiment, sampler))
            print(json.dumps(rows[-1]), flush=True)
    by = {(r["experiment"], r["sampler"]): r["seconds"] for r in rows}
    ratios = {e: round(by[(e, "surrogate")] / by[(e, "tpe")], 2) for e in args.experiments.split(",")
              if (e, "surrogate") in by and (e, "tpe") in by}
    result = {"runs": rows, "surrogate_over_tpe": ratios}
    (ROOT / "benchmarks" / "results" / "default_searches.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(ratios))


if __name__ == "__main__":
    main()
