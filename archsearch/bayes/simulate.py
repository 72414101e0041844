"""Simulated search observations with known truth, for calibration and recovery checks."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .model import Observations


@dataclass
class Truth:
    theta: np.ndarray
    b: np.ndarray
    tau: np.ndarray
    gamma: np.ndarray
    lam: np.ndarray
    phi: np.ndarray     # per generator: how tightly a cell's accuracy follows theta - b

    def tpr(self) -> np.ndarray:
        return 1 / (1 + np.exp(-self.tau))

    def fpr(self, theta_g: float | None = None) -> np.ndarray:
        theta_g = self.theta.mean() if theta_g is None else theta_g
        skill = theta_g - self.b
        return (1 / (1 + np.exp(-(self.gamma[:, None] - self.lam[:, None] * skill[None, :])))).mean(axis=1)


def draw_truth(rng: np.random.Generator, questions: int = 40, generators: int = 3, verifiers: int = 1) -> Truth:
    return Truth(theta=rng.normal(0.0, 1.2, generators), b=rng.normal(0.0, 1.5, questions),
                 tau=rng.normal(1.5, 0.7, verifiers), gamma=rng.normal(-1.2, 0.6, verifiers),
                 lam=rng.normal(0.4, 0.3, verifiers), phi=np.exp(rng.normal(1.5, 0.7, generators)))


def simulate(truth: Truth, rng: np.random.Generator, samples: int = 8) -> Observations:
    Q, G, V = len(truth.b), len(truth.theta), len(truth.tau)
    q, g = np.meshgrid(np.arange(Q), np.arange(G), indexing="ij")
    q, g = q.ravel(), g.ravel()
    skill = truth.theta[g] - truth.b[q]
    n = np.full(len(q), samples)
    mu = np.clip(1 / (1 + np.exp(-skill)), 1e-6, 1 - 1e-6)
    y = rng.binomial(n, rng.beta(mu * truth.phi[g], (1 - mu) * truth.phi[g]))
    tpr = 1 / (1 + np.exp(-truth.tau))
    fpr = 1 / (1 + np.exp(-(truth.gamma[None, :] - truth.lam[None, :] * skill[:, None])))
    tp = rng.binomial(y[:, None], tpr[None, :])
    fp = rng.binomial((n - y)[:, None], fpr)
    return Observations(q=q, g=g, n=n, y=y, tp=tp, fp=fp, seen=np.ones((len(q), V), bool),
                        n_questions=Q, n_generators=G, n_verifiers=V)
