"""How many prompt variants the leave-one-variant-out check needs before its 0.80-0.95 window can tell
a calibrated model from a miscalibrated one -- a toy model, not a fit.

The pipelines of one left-out variant share its unknown prompt effect, so their errors move together.
Toy: a pipeline's standardised error is sqrt(rho) z_v + sqrt(1 - rho) e_p (z per variant, e per
pipeline, both N(0, 1)); a perfectly calibrated model's 90% interval covers it when |error| < 1.645.
``rho`` is set so that, at the pool's size, the chance that a calibrated model's pooled coverage lands in
the window matches what ``benchmarks/prompt_calibration.py`` measured with pseudo-truths drawn from the
fitted predictive itself (GSM8K: 3 variants x 21 pipelines, 23%; HumanEval: 2 x 842, 20%); then the
same chance is given for more variants.

    python benchmarks/variants_needed.py
"""

from __future__ import annotations

import json

import numpy as np

MEASURED = {"gsm8k-local": (3, 21, 0.23), "humaneval-local": (2, 842, 0.20)}   # variants, pipelines each, P(in window)
WINDOW = (0.80, 0.95)


def in_window(rho: float, variants: int, pipelines: int, rng: np.random.Generator, replicates: int = 4000) -> float:
    z = rng.standard_normal((replicates, variants, 1))
    e = rng.standard_normal((replicates, variants, min(pipelines, 200)))   # beyond ~200, more pipelines change nothing
    coverage = (np.abs(np.sqrt(rho) * z + np.sqrt(1 - rho) * e) < 1.645).mean(axis=(1, 2))
    return float(((coverage >= WINDOW[0]) & (coverage <= WINDOW[1])).mean())


def main() -> None:
    out = {}
    for pool, (variants, pipelines, measured) in MEASURED.items():
        rng = np.random.default_rng(0)
        grid = np.linspace(0.3, 0.98, 35)
        rho = float(grid[np.argmin([abs(in_window(r, variants, pipelines, rng) - measured) for r in grid])])
        chance = {v: round(in_window(rho, v, pipelines, rng), 2) for v in (2, 3, 4, 6, 8, 12, 16, 20, 30)}
        out[pool] = {"rho": round(rho, 2), "p_in_window_by_variants": chance,
                     "variants_for_half": min((v for v, p in chance.items() if p >= 0.5), default=None),
                     "variants_for_80pct": min((v for v, p in chance.items() if p >= 0.8), default=None)}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
