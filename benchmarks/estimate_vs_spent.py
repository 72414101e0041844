"""``optimize --estimate`` against what the search then pays, as a new user meets it: ``archsearch
init`` on 100 arithmetic questions with two priced models (gpt-4o-mini and gpt-4.1-nano prices from
litellm's map) behind the loopback OpenAI-compatible test server, then ``--estimate``, then the
search, for several seeds (the experiment's seed), each in a fresh folder.

    python benchmarks/estimate_vs_spent.py [--seeds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OPENAI_API_KEY": "sk-loopback", "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    return subprocess.run([sys.executable, "-m", "archsearch.cli", *args], capture_output=True, text=True, cwd=cwd, env=env)


def one(seed: int, port: int) -> dict:
    folder = Path(tempfile.mkdtemp())
    (folder / "q.csv").write_text("question,answer\n" + "".join(f"What is {i} + {3 * i + 7}?,{4 * i + 7}\n"
                                                                for i in range(100)))
    made = cli("init", "exp", "--data", "q.csv", "--model", "openai/gpt-4o-mini", "--model", "openai/gpt-4.1-nano",
               "--api-base", f"http://127.0.0.1:{port}/v1", cwd=folder)
    assert made.returncode == 0, made.stderr
    exp = folder / "exp" / "experiment.yaml"
    exp.write_text(exp.read_text().replace("seed: 0", f"seed: {seed}"))
    start = time.perf_counter()
    estimated = cli("optimize", "exp", "--estimate", cwd=folder)
    estimate_s = time.perf_counter() - start
    assert estimated.returncode == 0, estimated.stderr
    est = json.loads((folder / "exp/out/estimate.json").read_text())
    start = time.perf_counter()
    searched = cli("optimize", "exp", cwd=folder)
    search_s = time.perf_counter() - start
    assert searched.returncode == 0, searched.stderr
    spent = json.loads((folder / "exp/out/report.json").read_text())["client"]
    calls, usd = est["paid_calls"], est["usd"]
    return {"seed": seed, "estimate": {k: est[k] for k in ("paid_calls", "usd", "seconds")}, "estimate_took_s": estimate_s,
            "spent": {"paid_calls": spent["calls"], "usd": spent["usd"], "seconds": search_s},
            "calls_inside": calls["low90"] <= spent["calls"] <= calls["high90"],
            "usd_inside": usd["low90"] <= spent["usd"] <= usd["high90"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, default=3)
    args = p.parse_args()
    from archsearch.testing.fixed_latency_server import make_app
    from archsearch.testing.net import serving

    rows = []
    with serving(make_app(0.05)) as port:
        for seed in range(args.seeds):
            rows.append(one(seed, port))
            print(json.dumps(rows[-1]), flush=True)
    (ROOT / "benchmarks/results/estimate_vs_spent.json").write_text(json.dumps(rows, indent=1))
    print(f"calls inside the 90% range: {sum(r['calls_inside'] for r in rows)}/{len(rows)}; "
          f"dollars: {sum(r['usd_inside'] for r in rows)}/{len(rows)}")


if __name__ == "__main__":
    main()
