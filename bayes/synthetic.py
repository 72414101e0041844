"""Simulated search observations with known truth, drawn from the model itself, for the
simulation-based calibration (bayes/calibration_sbc.py) and recovery tests."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from archsearch.bayes.model import Observations


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


# the generators of a simulated search: (model, setting, prompt variant); the last is the first's model
# and setting with a prompt of its own (variant 0), as a searched instruction or demonstrations make
STRUCTURE = (np.array([0, 0, 1, 0]), np.array([0, 1, 2, 0]), np.array([-1, -1, -1, 0]))


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
    structure: tuple = STRUCTURE

    @property
    def prompt_effect(self) -> float:
        """How far the prompt variant moves its generator (generator 3 against generator 0 in STRUCTURE)."""
        return float(self.theta[3] - self.theta[0])

    def tpr(self) -> np.ndarray:
        return _sigmoid(self.tau)

    def fpr(self, g: int) -> np.ndarray:
        """[V] FPR for generator g, averaged over the questions."""
        skill = self.theta[g] - self.b
        return _sigmoid(self.gamma[:, g][:, None] - self.lam[:, None] * skill[None, :]).mean(axis=1)


def plain(generators: int) -> tuple:
    """A structure of ``generators`` unrelated generators (each its own model, setting and prompt)."""
    return np.arange(generators), np.arange(generators), np.full(generators, -1)


def draw_truth(rng: np.random.Generator, questions: int = 40, verifiers: int = 2, rankers: int = 2,
               fusers: int = 2, structure: tuple = STRUCTURE) -> Truth:
    models, settings, variants = structure
    generators = len(models)
    s_tau, s_gam = abs(rng.normal(0, 0.5)), abs(rng.normal(0, 0.5))
    tau = rng.normal(1.5, 0.7, verifiers)[:, None] + s_tau * rng.normal(size=(verifiers, generators))
    gamma = rng.normal(-1.2, 0.6, verifiers)[:, None] + s_gam * rng.normal(size=(verifiers, generators))
    ability, shift = rng.normal(0.0, 1.0, models.max() + 1), rng.normal(0.0, 0.6, settings.max() + 1)
    prompt = abs(rng.normal(0, 0.5)) * rng.normal(size=max(variants.max(), 0) + 1)   # plain(): no variant
    theta = ability[models] + shift[settings] + np.where(variants >= 0, prompt[np.maximum(variants, 0)], 0.0)
    return Truth(theta=theta, b=rng.normal(0.0, 1.5, questions), structure=structure,
                 phi=np.exp(rng.normal(1.5, 0.7, generators)), tau=tau, gamma=gamma,
                 lam=rng.normal(0.4, 0.3, verifiers), rank_beta=rng.normal(1.0, 1.0, rankers),
                 rank_alpha=rng.normal(0.0, 0.5, rankers),
                 fuse={"a": rng.normal(0.0, 1.0, fusers), "b": rng.normal(1.0, 0.5, fusers),
                       "d": rng.normal(0.3, 0.3, fusers), "e": rng.normal(0.0, 0.5, fusers)})


def simulate(truth: Truth, rng: np.random.Generator, samples: int = 8, ranked: int = 4, writers: int = 0) -> Observations:
    """Every (question, generator) cell sampled ``samples`` times and judged by every verifier; the
    prompt variant (generator 3) on half the questions only; on every question each ranker ranks,
    and each fuser fuses, the candidates of a random composition (``_compose``). The last
    ``writers`` verifiers are model-written tests: right programs behave alike on a question's tests,
    so a cell's right samples count once (``known._written_counts``), its wrong ones one by one."""
    Q, G, V = len(truth.b), len(truth.theta), truth.tau.shape[0]
    q, g = np.meshgrid(np.arange(Q), np.arange(G), indexing="ij")
    q, g = q.ravel(), g.ravel()
    keep = (truth.structure[2][g] < 0) | (q % 2 == 0)          # a prompt variant is tried on half the questions
    q, g = q[keep], g[keep]
    skill = truth.theta[g] - truth.b[q]
    mu = np.clip(_sigmoid(skill), 1e-6, 1 - 1e-6)
    p = rng.beta(mu * truth.phi[g], (1 - mu) * truth.phi[g])
    right = rng.random((len(q), samples)) < p[:, None]
    n = np.full(len(q), samples)
    y = right.sum(axis=1)
    tpr = _sigmoid(truth.tau[:, g].T)                                               # [cells, V]
    fpr = _sigmoid(truth.gamma[:, g].T - truth.lam[None, :] * skill[:, None])
    judged_y = np.repeat(y[:, None], V, axis=1)
    judged_y[:, V - writers:] = (y > 0)[:, None]
    judged_n = (n - y)[:, None] + judged_y
    tp = rng.binomial(judged_y, tpr)
    fp = rng.binomial((n - y)[:, None], fpr)
    rank_rows, fuse_rows = [], []
    for qi in range(Q):
        for r in range(len(truth.rank_beta)):
            inputs = _compose(truth, rng, qi, right, q, g, tpr, fpr)
            if len(inputs) >= 2:
                util = truth.rank_beta[r] * inputs + truth.rank_alpha[r] * (np.arange(len(inputs)) == 0)
                order = np.argsort(-(util + rng.gumbel(size=len(inputs))), kind="stable")
                rank_rows.append((r, inputs.astype(float), order[0], order[1]))
        for f in range(len(truth.fuse["a"])):
            inputs, crit = _compose(truth, rng, qi, right, q, g, tpr, fpr), float(rng.random() < 0.5)
            k, m = len(inputs), float(inputs.sum())
            share = (m + 0.5) / (k + 1)
            logit = (truth.fuse["a"][f] + truth.fuse["b"][f] * np.log(share / (1 - share))
                     - truth.fuse["d"][f] * truth.b[qi] + truth.fuse["e"][f] * crit)
            fuse_rows.append((f, qi, k, m, crit, float(rng.random() < _sigmoid(logit))))
    width = max(len(r[1]) for r in rank_rows)
    rank_y, rank_valid = np.zeros((len(rank_rows), width)), np.zeros((len(rank_rows), width), bool)
    for i, row in enumerate(rank_rows):
        rank_y[i, : len(row[1])], rank_valid[i, : len(row[1])] = row[1], True
    fuse = np.array(fuse_rows, float)
    return Observations(q=q, g=g, n=n, y=y, tp=tp, fp=fp, seen=np.ones((len(q), V), bool), judged_n=judged_n,
                        judged_y=judged_y, n_questions=Q, verifier_runs_tests=np.arange(V) >= V - writers,
                        n_generators=G, n_verifiers=V, generator_model=truth.structure[0],
                        generator_setting=truth.structure[1], generator_variant=truth.structure[2],
                        rank_r=np.array([r[0] for r in rank_rows], int), rank_y=rank_y, rank_valid=rank_valid,
                        rank_first=np.array([r[2] for r in rank_rows], int),
                        rank_second=np.array([r[3] for r in rank_rows], int), n_rankers=len(truth.rank_beta),
                        fuse_f=fuse[:, 0].astype(int), fuse_q=fuse[:, 1].astype(int), fuse_k=fuse[:, 2],
                        fuse_m=fuse[:, 3], fuse_crit=fuse[:, 4], fuse_y=fuse[:, 5], n_fusers=len(truth.fuse["a"]))


def _compose(truth: Truth, rng: np.random.Generator, qi: int, right: np.ndarray, q: np.ndarray, g: np.ndarray,
             tpr: np.ndarray, fpr: np.ndarray) -> np.ndarray:
    """The correctness of the candidates a random composition hands a ranker or fuser: the first n
    samples of a random generator, kept whole or filtered by a verifier (its accepted ones; all when
    none), sometimes cut to the first k -- as pipelines in any layer order present them."""
    cells = np.flatnonzero(q == qi)
    cell = cells[rng.integers(len(cells))]
    n = int(rng.integers(2, right.shape[1] + 1))
    inputs = right[cell, :n]
    if rng.random() < 0.5:
        v = int(rng.integers(tpr.shape[1]))
        accepted = rng.random(n) < np.where(inputs, tpr[cell, v], fpr[cell, v])
        inputs = inputs[accepted] if accepted.any() else inputs
    if rng.random() < 0.3 and len(inputs) > 2:
        inputs = inputs[: int(rng.integers(2, len(inputs) + 1))]
    return inputs
