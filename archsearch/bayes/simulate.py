"""Simulated search observations with known truth, drawn from the model itself, for the
simulation-based calibration (bayes/calibration_sbc.py) and recovery tests."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .model import Observations


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


@dataclass
class Truth:
    theta: np.ndarray        # [G]
    b: np.ndarray            # [Q]
    phi: np.ndarray          # [G] how tightly a cell's accuracy follows theta - b
    tau: np.ndarray          # [V, G] logit TPR
    gamma: np.ndarray        # [V, G] FPR intercept
    lam: np.ndarray          # [V]
    rank_beta: np.ndarray    # [R]
    rank_alpha: np.ndarray   # [R]
    fuse: dict[str, np.ndarray]  # a, b, d, e: [F]

    def tpr(self) -> np.ndarray:
        return _sigmoid(self.tau)

    def fpr(self, g: int) -> np.ndarray:
        """[V] FPR for generator g, averaged over the questions."""
        skill = self.theta[g] - self.b
        return _sigmoid(self.gamma[:, g][:, None] - self.lam[:, None] * skill[None, :]).mean(axis=1)


def draw_truth(rng: np.random.Generator, questions: int = 40, generators: int = 3, verifiers: int = 2,
               rankers: int = 2, fusers: int = 2) -> Truth:
    s_tau, s_gam = abs(rng.normal(0, 0.5)), abs(rng.normal(0, 0.5))
    tau = rng.normal(1.5, 0.7, verifiers)[:, None] + s_tau * rng.normal(size=(verifiers, generators))
    gamma = rng.normal(-1.2, 0.6, verifiers)[:, None] + s_gam * rng.normal(size=(verifiers, generators))
    return Truth(theta=rng.normal(0.0, 1.2, generators), b=rng.normal(0.0, 1.5, questions),
                 phi=np.exp(rng.normal(1.5, 0.7, generators)), tau=tau, gamma=gamma,
                 lam=rng.normal(0.4, 0.3, verifiers), rank_beta=rng.normal(1.0, 1.0, rankers),
                 rank_alpha=rng.normal(0.0, 0.5, rankers),
                 fuse={"a": rng.normal(0.0, 1.0, fusers), "b": rng.normal(1.0, 0.5, fusers),
                       "d": rng.normal(0.3, 0.3, fusers), "e": rng.normal(0.0, 0.5, fusers)})


def simulate(truth: Truth, rng: np.random.Generator, samples: int = 8, ranked: int = 4) -> Observations:
    """Every (question, generator) cell sampled ``samples`` times and judged by every verifier; each
    ranker ranks the first ``ranked`` samples of generator 0 on every question; each fuser fuses
    them on every question, with and without critiques."""
    Q, G, V = len(truth.b), len(truth.theta), truth.tau.shape[0]
    q, g = np.meshgrid(np.arange(Q), np.arange(G), indexing="ij")
    q, g = q.ravel(), g.ravel()
    skill = truth.theta[g] - truth.b[q]
    mu = np.clip(_sigmoid(skill), 1e-6, 1 - 1e-6)
    p = rng.beta(mu * truth.phi[g], (1 - mu) * truth.phi[g])
    right = rng.random((len(q), samples)) < p[:, None]
    n = np.full(len(q), samples)
    y = right.sum(axis=1)
    tpr = _sigmoid(truth.tau[:, g].T)                                               # [cells, V]
    fpr = _sigmoid(truth.gamma[:, g].T - truth.lam[None, :] * skill[:, None])
    tp = rng.binomial(y[:, None], tpr)
    fp = rng.binomial((n - y)[:, None], fpr)
    first = right[g == 0][:, :ranked]                                               # [Q, ranked] generator 0
    rank_rows = []
    for r in range(len(truth.rank_beta)):
        for qi in range(Q):
            util = truth.rank_beta[r] * first[qi] + truth.rank_alpha[r] * (np.arange(ranked) == 0)
            order = np.argsort(-(util + rng.gumbel(size=ranked)), kind="stable")
            rank_rows.append((r, first[qi].astype(float), order[0], order[1]))
    fuse_rows = []
    for f in range(len(truth.fuse["a"])):
        for qi in range(Q):
            for crit in (0.0, 1.0):
                m = first[qi].sum()
                share = (m + 0.5) / (ranked + 1)
                logit = (truth.fuse["a"][f] + truth.fuse["b"][f] * np.log(share / (1 - share))
                         - truth.fuse["d"][f] * truth.b[qi] + truth.fuse["e"][f] * crit)
                fuse_rows.append((f, qi, ranked, m, crit, float(rng.random() < _sigmoid(logit))))
    fuse = np.array(fuse_rows, float)
    return Observations(q=q, g=g, n=n, y=y, tp=tp, fp=fp, seen=np.ones((len(q), V), bool), n_questions=Q,
                        n_generators=G, n_verifiers=V,
                        rank_r=np.array([r[0] for r in rank_rows], int), rank_y=np.array([r[1] for r in rank_rows]),
                        rank_valid=np.ones((len(rank_rows), ranked), bool),
                        rank_first=np.array([r[2] for r in rank_rows], int),
                        rank_second=np.array([r[3] for r in rank_rows], int), n_rankers=len(truth.rank_beta),
                        fuse_f=fuse[:, 0].astype(int), fuse_q=fuse[:, 1].astype(int), fuse_k=fuse[:, 2],
                        fuse_m=fuse[:, 3], fuse_crit=fuse[:, 4], fuse_y=fuse[:, 5], n_fusers=len(truth.fuse["a"]))
