"""Closed forms the surrogate must agree with (the targets listed in bayes/MODEL.md; Brown et al. 2024 "Large Language
Monkeys"; Stroebl et al. 2024 "Inference Scaling fLaws"; Chen et al. 2021 pass@k)."""

from __future__ import annotations

import math

from scipy import special, stats


def first_accepted_of_k(p: float, tpr: float, fpr: float, k: float) -> float:
    """P(correct) when drawing up to k samples and returning the first the verifier accepts
    (abstaining if none is): (c p / a) (1 - (1 - a)^k), a = c p + f (1 - p)."""
    a = tpr * p + fpr * (1 - p)
    if a == 0:
        return 0.0
    return tpr * p / a * (1 - (1 - a) ** k)


def resampling_ceiling(p: float, tpr: float, fpr: float) -> float:
    """k -> infinity of ``first_accepted_of_k``: the verifier's precision, not 1."""
    a = tpr * p + fpr * (1 - p)
    return tpr * p / a if a else 0.0


def mixture_ceiling(rates: list[float], weights: list[float], tpr: float, soundness: float) -> tuple[float, float]:
    """fLaws toy model: question types with single-sample accuracy ``rates``; FPR = 1 - soundness.
    Returns (ceiling with unlimited resampling, single-sample accuracy)."""
    fpr = 1 - soundness
    ceiling = sum(w * resampling_ceiling(r, tpr, fpr) for r, w in zip(rates, weights))
    single = sum(w * r for r, w in zip(rates, weights))
    return ceiling, single


def coverage_beta(alpha: float, beta: float, k: float) -> float:
    """pass@k when per-question accuracy p ~ Beta(alpha, beta): 1 - E[(1 - p)^k]
    = 1 - B(alpha, beta + k) / B(alpha, beta); the tail falls like k^-alpha."""
    return 1 - math.exp(special.betaln(alpha, beta + k) - special.betaln(alpha, beta))


def majority_binary(p: float, k: int) -> float:
    """P(the majority of k independent votes is correct), binary outcomes, k odd."""
    if k % 2 == 0:
        raise ValueError(f"k must be odd for a strict majority, but got {k}")
    return float(stats.binom.sf(k // 2, k, p))


def voting_mixture(shares: list[float], rates: list[float], k: int) -> float:
    """Accuracy of majority-of-k over a mixture of easy and hard questions (can fall with k)."""
    return sum(s * majority_binary(r, k) for s, r in zip(shares, rates))


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples with c correct: 1 - C(n - c, k) / C(n, k)."""
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def optimal_samples(p: float, tpr: float, fpr: float, fp_cost: float, sample_cost: float = 0.0,
                    k_max: int = 1000) -> tuple[int, float]:
    """Resample-until-accepted with a price on mistakes: utility(k) = P(correct) - fp_cost *
    P(accepted wrong) - sample_cost * E[samples]. Returns (best k, its utility); k=0 abstains."""
    a = tpr * p + fpr * (1 - p)
    best = (0, 0.0)
    for k in range(1, k_max + 1):
        accepted = 1 - (1 - a) ** k
        correct = tpr * p / a * accepted if a else 0.0
        wrong = accepted - correct
        expected_samples = (1 - (1 - a) ** k) / a if a else k
        utility = correct - fp_cost * wrong - sample_cost * expected_samples
        if utility > best[1] + 1e-12:
            best = (k, utility)
    return best
