"""Recovery and calibration on simulated searches with known truth.

For each seed: draw true abilities (two models, three settings, and a prompt variant of the first
model's first setting), question difficulties, verifier rates per (verifier, generator), rankers'
selection strengths and fusers' curves; simulate what a search would observe (8 samples per question
and generator -- the prompt variant on half the questions --, verdicts of 2 verifiers and of one
set of model-written tests (a cell's right samples counted once: they pass or fail together), and on every
question 2 rankers and 2 fusers given the candidates of a random layer composition: some samples,
perhaps filtered by a verifier, perhaps cut short), fit the NumPyro model, and check whether the 90%
posterior intervals contain the truth. Pooled over 20 seeds, the hit rate of a calibrated model is
about 0.90.

    python bayes/calibration_sbc.py [--seeds 20]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from synthetic import draw_truth, simulate

from archsearch.bayes.fit import Surrogate
from archsearch.bayes.model import Shapes
from archsearch.bayes.resources import release_compiled_code


def run(seeds: int = 20, questions: int = 40, verifiers: int = 2, writers: int = 1) -> dict:
    surrogate = Surrogate(Shapes(verifiers=verifiers + writers))
    hits = {"theta": [], "prompt_effect": [], "tpr": [], "fpr": [], "tpr_written": [], "fpr_written": [],
            "rank_beta": [], "fuse_a": [], "fuse_b": [], "fuse_e": []}
    fit_seconds = []
    for seed in range(seeds):
        rng = np.random.default_rng(1000 + seed)
        truth = draw_truth(rng, questions, verifiers + writers)
        post = surrogate.fit(simulate(truth, rng, writers=writers), "nuts")
        fit_seconds.append(post.seconds)
        release_compiled_code()   # NUTS compiles anew each fit; its memory maps would pile up

        def inside(draws, value):
            lo, hi = np.percentile(draws, [5, 95], axis=0)
            return list(np.ravel((lo <= value) & (value <= hi)))

        hits["theta"] += inside(post.theta, truth.theta)
        hits["prompt_effect"] += inside(post.theta[:, 3] - post.theta[:, 0], truth.prompt_effect)
        hits["tpr"] += inside(post.tpr()[:, :verifiers], truth.tpr()[:verifiers])   # per (verifier, generator)
        hits["tpr_written"] += inside(post.tpr()[:, verifiers:], truth.tpr()[verifiers:])
        # FPR of each verifier for each generator, averaged over the questions: per draw at that
        # draw's ability and difficulties vs the truth at the true ones
        for g in range(len(truth.theta)):
            hits["fpr"] += inside(post.fpr(g)[:, :verifiers], truth.fpr(g)[:verifiers])
            hits["fpr_written"] += inside(post.fpr(g)[:, verifiers:], truth.fpr(g)[verifiers:])
        hits["rank_beta"] += inside(post.rank_beta, truth.rank_beta)
        for k in ("a", "b", "e"):
            hits[f"fuse_{k}"] += inside(post.fuse[k], truth.fuse[k])
    pooled = [h for v in hits.values() for h in v]
    return {"seeds": seeds, "coverage_90_pooled": float(np.mean(pooled)),
            **{f"coverage_90_{k}": float(np.mean(v)) for k, v in hits.items()},
            "checks": len(pooled), "warm_fit_seconds_median": float(np.median(fit_seconds[1:] or fit_seconds))}


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--seeds", type=int, default=20)
    t = time.perf_counter()
    result = run(p.parse_args().seeds)
    result["total_seconds"] = time.perf_counter() - t
    print(json.dumps(result, indent=1))
