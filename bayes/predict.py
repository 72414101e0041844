"""Predicted accuracy of "generate n, [test], [vote]" pipelines on posterior draws, in closed form.

For a question with per-sample accuracy p (one draw of the cell's Beta posterior), verifier TPR c
and FPR f (a = c p + f (1 - p) is the chance a sample is accepted), with wrong answers assumed distinct (they rarely coincide: code, long
numbers) and ties going to the earliest sample:

  first sample                 p
  vote                         V(p, n) = 1 - (1-p)^n - n p (1-p)^(n-1) + p (1-p)^(n-1)
  test, first survivor         (c p / a)(1 - (1-a)^n)  +  (1-a)^n * none(p')
  test, vote among survivors   P(Xc >= 2) + P(Xc = 1, first survivor)  +  (1-a)^n * none(p')

where Xc ~ Bin(n, c p) counts accepted correct samples, p' = p (1-c) / (1-a) is a rejected sample's
accuracy, and none() is the spec's policy when nothing passes: keep_all (vote or first over all),
fallback (the first sample), abstain (0). Everything is vectorised over draws x pipelines x questions.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

KEEP_ALL, FALLBACK, ABSTAIN = 0, 1, 2


@dataclass(frozen=True)
class PipelineFeatures:
    """One row per pipeline: generator index, samples, verifier index (-1: none), policy, vote,
    and whether the test layer keeps the best-scoring candidates when none passes."""

    g: np.ndarray
    n: np.ndarray
    v: np.ndarray
    policy: np.ndarray
    vote: np.ndarray
    best: np.ndarray | None = None
    behaviour: np.ndarray | None = None   # the vote clusters programs by behaviour

    def __len__(self) -> int:
        return len(self.g)

    def by_behaviour(self) -> np.ndarray:
        return np.zeros(len(self.g), bool) if self.behaviour is None else self.behaviour.astype(bool)


def _vote(p, n):
    q = 1 - p
    return 1 - q ** n - n * p * q ** (n - 1) + p * q ** (n - 1)


@jax.jit
def _accuracy(theta, b, cell_p, tau, gamma, lam, g, n, v, policy, vote, testable):
    """theta [D,G], b [D,Q], cell_p [D,G,Q], tau/gamma [D,V,G], lam [D,V]; pipeline arrays [P];
    testable [Q]. Returns [D, P, Q]."""
    skill = theta[:, g][:, :, None] - b[:, None, :]                 # [D, P, Q]
    p = cell_p[:, g]
    has_v = (v >= 0)[:, None] & testable[None, :]                   # [P, Q]
    vi = jnp.maximum(v, 0)
    c = jax.nn.sigmoid(tau[:, vi, g])[:, :, None]
    f = jax.nn.sigmoid(gamma[:, vi, g][:, :, None] - lam[:, vi][:, :, None] * skill)
    n = n[None, :, None].astype(p.dtype)
    a = jnp.clip(c * p + f * (1 - p), 1e-9, 1.0)
    cp = c * p
    none_p = p * (1 - c) / jnp.clip(1 - a, 1e-9, 1.0)
    vote_b = vote[None, :, None]
    none_value = jnp.where(policy[None, :, None] == ABSTAIN, 0.0,
                           jnp.where((policy[None, :, None] == KEEP_ALL) & vote_b, _vote(none_p, n), none_p))
    rejected_all = (1 - a) ** n
    first_survivor = cp / a * (1 - rejected_all)
    q_cp = 1 - cp
    ge2 = 1 - q_cp ** n - n * cp * q_cp ** (n - 1)
    diff = q_cp - (1 - a)
    geom = jnp.where(jnp.abs(diff) > 1e-7, (q_cp ** n - rejected_all) / jnp.where(jnp.abs(diff) > 1e-7, diff, 1.0),
                     n * (1 - a) ** (n - 1))
    vote_survivors = ge2 + cp * geom
    tested = jnp.where(vote_b, vote_survivors, first_survivor) + rejected_all * none_value
    untested = jnp.where(vote_b, _vote(p, n), p)
    return jnp.where(has_v[None], tested, untested)


def predict_accuracy(posterior, features: PipelineFeatures, draws: np.ndarray | None = None,
                     predictive_rng: np.random.Generator | None = None, testable: np.ndarray | None = None,
                     cell_rng: np.random.Generator | None = None) -> np.ndarray:
    """Accuracy over the questions, per draw and pipeline: [D, P]. The expected accuracy by default;
    with ``predictive_rng``, a realised one (each question right or wrong by its probability), whose
    spread is what a measured score can be compared with. Each cell's accuracy is one draw from its
    posterior (``Posterior.cell_p``); ``testable`` marks the questions a test layer can verify."""
    idx = np.arange(posterior.draws) if draws is None else np.asarray(draws)
    cell_p = posterior.cell_p(cell_rng or np.random.default_rng(0), idx)
    testable = np.ones(posterior.b.shape[1], bool) if testable is None else np.asarray(testable, bool)
    G = posterior.theta.shape[1]

    def pick(a):
        a = np.asarray(a)[idx]
        return a if a.shape[1] else np.zeros((len(idx), 1) + a.shape[2:])

    tau, gamma = pick(posterior.tau), pick(posterior.gamma)
    if tau.ndim == 2:   # a verifier-only array of [D, V]: the same rates for every generator
        tau, gamma = (np.repeat(x[..., None], G, axis=-1) for x in (tau, gamma))
    acc = _accuracy(jnp.asarray(posterior.theta[idx]), jnp.asarray(posterior.b[idx]), jnp.asarray(cell_p),
                    jnp.asarray(tau), jnp.asarray(gamma), jnp.asarray(pick(posterior.lam)),
                    jnp.asarray(features.g), jnp.asarray(features.n), jnp.asarray(features.v),
                    jnp.asarray(features.policy), jnp.asarray(features.vote.astype(bool)), jnp.asarray(testable))
    acc = np.asarray(acc)
    if predictive_rng is not None:
        return (predictive_rng.random(acc.shape) < acc).mean(axis=2)
    return acc.mean(axis=2)
