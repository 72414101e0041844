"""Surrogate speed on 2 cores, with shapes that grow with the data (powers of two).

- warm refit at 200 questions x 8 generators x 16 samples (1,600 cells: SVI's regime) -- target < 10 s;
- a fit at 1,000 questions x 16 generators x 4 verifiers (16,000 cells) -- it must fit at all;
- the closed-form predictor scoring 10,000 pipelines.

    python benchmarks/surrogate_speed.py
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bayes"))   # the surrogate's science: not the package's
from predict import PipelineFeatures, predict_accuracy  # noqa: E402
from synthetic import draw_truth, plain, simulate  # noqa: E402

from archsearch.bayes.fit import Surrogate  # noqa: E402


def fits(questions: int, generators: int, verifiers: int, samples: int, method: str, repeats: int) -> dict:
    surrogate = Surrogate(svi_steps=3000)
    seconds, post = [], None
    for seed in range(repeats):
        rng = np.random.default_rng(seed)
        obs = simulate(draw_truth(rng, questions, verifiers, structure=plain(generators)), rng, samples=samples)
        t = time.perf_counter()
        post = surrogate.fit(obs, method)
        seconds.append(time.perf_counter() - t)
    return {"cells": questions * generators, "shapes": str(surrogate.last_shapes), "cold_s": seconds[0],
            "warm_s": float(np.median(seconds[1:])) if len(seconds) > 1 else None, "method": post.method}, post


def main() -> None:
    out = {}
    out["refit_200q_8g_16s"], post = fits(200, 8, 2, 16, "svi", 3)
    out["fit_1000q_16g_4v"], _ = fits(1000, 16, 4, 4, "svi", 1)
    rng = np.random.default_rng(0)
    n = 10_000
    feats = PipelineFeatures(g=rng.integers(0, 8, n), n=rng.integers(1, 65, n), v=rng.integers(-1, 1, n),
                             policy=rng.integers(0, 3, n), vote=rng.integers(0, 2, n))
    predict_accuracy(post, feats, [0])
    t = time.perf_counter()
    predict_accuracy(post, feats, [0])
    out["score_10k_pipelines_one_draw_s"] = time.perf_counter() - t
    print(json.dumps(out, indent=1, default=float))


if __name__ == "__main__":
    main()
