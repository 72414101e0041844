"""The shipped searches, side by side: wall time and paid calls of ``archsearch optimize`` on each
shipped experiment with the surrogate (the default sampler) and with TPE, each in a fresh output
folder (a new study; the shipped call caches make every call a cache hit), run one after the other
on the same machine.

Each run works on its own copy of ``experiments/``, ``spaces/`` and ``objectives/``, so no run sees
what another wrote into a call cache, and the shipped caches stay as they are. The copies hold the
sandbox runs the shipped caches record (a fresh clone's state, on the Python minor version that
recorded them); ``--cold`` deletes them from each copy: a first search on another interpreter, which
runs every program it checks in the sandbox.

    python benchmarks/default_searches.py [--samplers surrogate,tpe] [--experiments humaneval-local,...] [--cold]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from contextlib import closing
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXPERIMENTS = ("humaneval-local", "humaneval-archon", "gsm8k-local")


def copy_of_experiments(cold: bool) -> Path:
    root = Path(tempfile.mkdtemp())
    for folder in ("experiments", "spaces", "objectives"):
        shutil.copytree(ROOT / folder, root / folder)
    for cache in (root / "experiments").glob("*/calls.sqlite") if cold else ():
        with closing(sqlite3.connect(cache)) as db, db:   # the second: commit
            if db.execute("select 1 from sqlite_master where name = 'archsearch_sandbox_runs'").fetchone():
                db.execute("delete from archsearch_sandbox_runs")
    return root


def run(experiment: str, sampler: str, cold: bool) -> dict:
    out = Path(tempfile.mkdtemp())
    root = copy_of_experiments(cold)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "archsearch.cli", "optimize", str(root / "experiments" / experiment),
                           "--sampler", sampler, "--out", str(out)], capture_output=True, text=True,
                          env={**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"})
    seconds = time.perf_counter() - start
    shutil.rmtree(root)
    report = json.loads((out / "report.json").read_text()) if (out / "report.json").exists() else {}
    chosen = report.get("choice", {}).get("chosen", {})
    final = report.get("final") or {}
    paid = re.findall(r"paid calls (\d+)", done.stderr)
    return {"experiment": experiment, "sampler": sampler, "cold": cold, "seconds": round(seconds, 1), "returncode": done.returncode,
            "paid_calls": int(paid[-1]) if paid else None, "chosen": chosen.get("pipeline"),
            "final_accuracy": final.get("accuracy"), "stderr_tail": done.stderr[-400:] if done.returncode else ""}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--samplers", default="surrogate,tpe")
    p.add_argument("--experiments", default=",".join(EXPERIMENTS))
    p.add_argument("--cold", action="store_true", help="without the sandbox runs the shipped caches record")
    args = p.parse_args()
    rows = []
    for experiment in args.experiments.split(","):
        for sampler in args.samplers.split(","):
            rows.append(run(experiment, sampler, args.cold))
            print(json.dumps(rows[-1]), flush=True)
    by = {(r["experiment"], r["sampler"]): r["seconds"] for r in rows}
    ratios = {e: round(by[(e, "surrogate")] / by[(e, "tpe")], 2) for e in args.experiments.split(",")
              if (e, "surrogate") in by and (e, "tpe") in by}
    result = {"runs": rows, "surrogate_over_tpe": ratios}
    name = "default_searches-cold.json" if args.cold else "default_searches.json"
    (ROOT / "benchmarks" / "results" / name).write_text(json.dumps(result, indent=1))
    print(json.dumps(ratios))


if __name__ == "__main__":
    main()
