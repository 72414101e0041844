"""A greedy answer and its model's samples fail together.

A generator at temperature 0 gives one answer per question (decoding is deterministic): its cell is
right or wrong, not a rate. And that answer is the mode of what the same model and prompt sample, so
where the samples are rarely right the greedy answer is rarely right. The fit sees the cells of a
question as independent given its difficulty; on HumanEval the greedy answer was right on 5% of the
questions where none of 8 samples at T=0.8 was, where independent cells predicted 19%, and on 88%
where 5-7 were (78% predicted): ``benchmarks/cell_coupling.py``. A pipeline mixing the two was then
predicted 5-7 points above what it scored (``benchmarks/family_bias.py``).

So a one-answer cell is drawn on its siblings (same model, same prompt, temperature above 0): each
sibling's accuracy p, drawn as the fit says, is a quantile of its Beta, with normal score
z = Phi^-1(I(p; mu phi, (1 - mu) phi)); the greedy cell's latent is z0 = c zbar + sqrt(1 - c^2) e
(zbar: the siblings' scores summed over sqrt(k), standard normal), and the cell is right where
Phi(z0) > 1 - mu0, so with its own Rasch mean mu0 marginally. The coupling c is learnt from the
questions where both were observed: a likelihood over a grid (each question's difficulty integrated
out), its grid posterior drawn once per posterior draw (uniform over the grid when nothing pairs them).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import betainc, ndtr, ndtri
from scipy.stats import betabinom

GRID = np.array([0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95])
DRAWS_PER_CELL = 32      # Monte Carlo draws of a sibling's accuracy per question and difficulty, for the likelihood
DIFFICULTY_NODES = 24    # a question's difficulty integrated over this many quantiles of its prior
EDGE = 1e-9


@dataclass(frozen=True)
class Coupling:
    one_answer: np.ndarray    # [G] the generator samples at temperature 0
    siblings: np.ndarray      # [G, G] siblings[g, h]: h samples the model and prompt of one-answer g above 0
    c: np.ndarray             # [draws] the coupling per posterior draw


def one_answer_and_siblings(layers: list, model_of: np.ndarray, variant_of: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[G] which generators sample at temperature 0, [G, G] each one's siblings (its model and prompt,
    sampled above 0)."""
    hot = np.array([layer.params.temperature > 0 for layer in layers], bool)
    one = np.array([layer.params.temperature == 0 for layer in layers], bool)
    same = (model_of[:, None] == model_of[None, :]) & (variant_of[:, None] == variant_of[None, :])
    return one, same & one[:, None] & hot[None, :]


def scores(p: np.ndarray, mu: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """Normal scores of accuracies p within their cells' Beta(mu phi, (1 - mu) phi)."""
    u = betainc(mu * phi, (1 - mu) * phi, np.clip(p, EDGE, 1 - EDGE))
    return ndtri(np.clip(u, EDGE, 1 - EDGE))


def right_chance(c: np.ndarray, zbar: np.ndarray, mu0: np.ndarray) -> np.ndarray:
    """P(the one answer is right | its siblings' summed score zbar), per coupling c."""
    return ndtr((c * zbar - ndtri(1 - mu0)) / np.sqrt(1 - c ** 2))


def couple(p: np.ndarray, mu: np.ndarray, phi: np.ndarray, n: np.ndarray, y: np.ndarray, coupling: Coupling,
           c: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``p`` [D, G, Q] the cells' accuracies drawn independently, with each one-answer cell redrawn on
    its siblings (an observed one is its answer: y / n). ``mu``, ``phi``: the cells' Beta, [D, G, Q];
    ``n``, ``y``: [G, Q] what each cell showed; ``c``: [D] the coupling of these draws."""
    p = p.copy()
    for g in np.flatnonzero(coupling.one_answer):
        kin = np.flatnonzero(coupling.siblings[g])
        zbar = scores(p[:, kin], mu[:, kin], phi[:, kin]).sum(axis=1) / np.sqrt(len(kin)) if len(kin) else 0.0
        z0 = c[:, None] * zbar + np.sqrt(1 - c[:, None] ** 2) * rng.standard_normal(p[:, g].shape)
        drawn = (ndtr(z0) > 1 - mu[:, g]).astype(float)
        p[:, g] = np.where(n[g] > 0, y[g] / np.maximum(n[g], 1), drawn)
    return p


def fit_coupling(theta: np.ndarray, sigma_b: np.ndarray, phi: np.ndarray, n: np.ndarray, y: np.ndarray,
                 one_answer: np.ndarray, siblings: np.ndarray, draws: int, rng: np.random.Generator) -> np.ndarray:
    """[draws] the coupling, from every question where a one-answer cell and its siblings were observed:
    the likelihood of the one answer given the siblings' samples over ``GRID``, at the posterior mean
    of the abilities, the question's difficulty integrated over its prior given the siblings' samples
    alone (the fitted difficulty has already seen the greedy answer, and would explain part of the
    coupling away)."""
    nodes = sigma_b.mean() * ndtri((np.arange(DIFFICULTY_NODES) + 0.5) / DIFFICULTY_NODES)   # the prior, in quantiles
    ability, ph = theta.mean(axis=0), phi.mean(axis=0)
    loglik = np.zeros(len(GRID))
    for g in np.flatnonzero(one_answer):
        kin = np.flatnonzero(siblings[g])
        qs = np.flatnonzero((n[g] > 0) & (n[kin] > 0).all(axis=0)) if len(kin) else np.zeros(0, int)
        if not len(qs):
            continue
        mu = np.clip(1 / (1 + np.exp(-(ability[kin, None] - nodes[None, :]))), 1e-6, 1 - 1e-6)[:, None, :]  # [k, 1, B]
        a, b = mu * ph[kin, None, None], (1 - mu) * ph[kin, None, None]
        nk, yk = n[kin][:, qs, None], y[kin][:, qs, None]                                            # [k, Q', 1]
        weight = betabinom.logpmf(yk, nk, a, b).sum(axis=0)                                          # [Q', B]
        weight = np.exp(weight - weight.max(axis=1, keepdims=True))
        weight /= weight.sum(axis=1, keepdims=True)
        p = rng.beta(a + yk, b + nk - yk, size=(DRAWS_PER_CELL,) + np.broadcast_shapes(a.shape, yk.shape))
        zbar = scores(p, mu, ph[kin, None, None]).sum(axis=1) / np.sqrt(len(kin))                    # [M, Q', B]
        mu0 = 1 / (1 + np.exp(-(ability[g] - nodes)))
        chance = right_chance(GRID[:, None, None, None], zbar[None], mu0).mean(axis=1)               # [grid, Q', B]
        chance = np.clip((chance * weight[None]).sum(axis=-1), 1e-9, 1 - 1e-9)
        right = y[g, qs] / n[g, qs] >= 0.5
        loglik += np.where(right[None], np.log(chance), np.log(1 - chance)).sum(axis=1)
    weight = np.exp(loglik - loglik.max())
    return rng.choice(GRID, size=draws, p=weight / weight.sum())
