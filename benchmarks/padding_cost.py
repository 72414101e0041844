"""What the padded shapes cost an SVI fit: the first fit of a search on the large synthetic space
(benchmarks/spaces/synthetic-large.yaml, fake LLM), fitted cold at the shapes the search pads to and
at tighter ones. Masked padding adds exact zeros, but a different reduction length can move the
last digits (it did on the HumanEval pools); the table says whether these fits agree and how long
each takes (the second of two timed fits, after compiling).

    python benchmarks/padding_cost.py [--seed 1]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import large_space  # noqa: E402

from archsearch.bayes import fit  # noqa: E402


class _Captured(Exception):
    """Raised by the stand-in fit once it has the search's first observations."""


def first_fit_input(seed: int):
    """The observations and padded shapes of a large-space search's first surrogate fit."""
    captured = []
    real = fit.Surrogate.fit

    def capture(self, obs, method=None):
        captured.append((obs, self.shapes))
        raise _Captured

    fit.Surrogate.fit = capture
    try:
        large_space.run("surrogate", seed, 20)
    except _Captured:
        pass
    finally:
        fit.Surrogate.fit = real
    return captured[0]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    obs, padded = first_fit_input(args.seed)
    tighter = {"as the search pads": padded,
               "rank and fuse observations at 8": dataclasses.replace(padded, rank_obs=8, fuse_obs=8),
               "and cells at 256": dataclasses.replace(padded, rank_obs=8, fuse_obs=8, cells=256)}
    rows = {}
    for name, shapes in tighter.items():
        fit.Surrogate(shapes, seed=0, method="svi").fit(obs)   # compiles (the compiled code is kept per shape)
        seconds = []
        for _ in range(2):
            start = time.perf_counter()
            post = fit.Surrogate(shapes, seed=0, method="svi").fit(obs)   # a new surrogate: a cold fit
            seconds.append(time.perf_counter() - start)
        rows[name] = {"shapes": dataclasses.asdict(shapes), "seconds": round(seconds[-1], 3),
                      "elbo_final": post.diagnostics["elbo_final"], "theta_mean": float(post.theta.mean()),
                      "lam_mean": float(post.lam.mean()), "b_mean": float(post.b.mean())}
        print(f"{name:34s} {seconds[-1]:.2f} s  elbo {post.diagnostics['elbo_final']!r}", flush=True)
    first = next(iter(rows.values()))
    same = all(r[k] == first[k] for r in rows.values() for k in ("elbo_final", "theta_mean", "lam_mean", "b_mean"))
    result = {"seed": args.seed, "observed_cells": int(len(obs.q)), "observed_rank": int(len(obs.rank_r)),
              "observed_fuse": int(len(obs.fuse_f)), "bit_for_bit_the_same": same, "fits": rows}
    (ROOT / "benchmarks" / "results" / "padding-cost.json").write_text(json.dumps(result, indent=1))
    print(json.dumps({k: v for k, v in result.items() if k != "fits"}))


if __name__ == "__main__":
    main()
