"""Surrogate speed on 2 cores: warm refit for 200 questions x 4 generators x 16 samples (the
issue's size; SVI, since 800 cells is past the NUTS threshold), and scoring 10,000 pipelines.

    python benchmarks/surrogate_speed.py
"""

from __future__ import annotations

import json
import time

import numpy as np

from archsearch.bayes.model import Shapes, Surrogate
from archsearch.bayes.predict import PipelineFeatures, predict_accuracy
from archsearch.bayes.simulate import draw_truth, simulate


def main() -> None:
    shapes = Shapes(questions=256, generators=8, verifiers=2, cells=1024)
    surrogate = Surrogate(shapes)
    timings = {}
    for method in ("svi", "nuts"):
        fits = []
        for seed in range(3):
            rng = np.random.default_rng(seed)
            obs = simulate(draw_truth(rng, questions=200, generators=4), rng, samples=16)
            t = time.perf_counter()
            post = surrogate.fit(obs, method)
            fits.append(time.perf_counter() - t)
        timings[method] = {"cold_s": fits[0], "warm_s": float(np.median(fits[1:])), "diagnostics": post.diagnostics}
    rng = np.random.default_rng(0)
    n = 10_000
    feats = PipelineFeatures(g=rng.integers(0, 4, n), n=rng.integers(1, 65, n), v=rng.integers(-1, 1, n),
                             policy=rng.integers(0, 3, n), vote=rng.integers(0, 2, n))
    predict_accuracy(post, feats, [0])
    t = time.perf_counter()
    predict_accuracy(post, feats, [0])
    one_draw = time.perf_counter() - t
    t = time.perf_counter()
    predict_accuracy(post, feats, np.arange(50))
    fifty = time.perf_counter() - t
    print(json.dumps({"refit_200q_4g_16s": timings, "score_10k_pipelines_one_draw_s": one_draw,
                      "score_10k_pipelines_50_draws_s": fifty}, indent=1, default=float))


if __name__ == "__main__":
    main()
