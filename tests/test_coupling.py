"""The greedy cell drawn on its model's samples (archsearch/bayes/coupling.py)."""

import numpy as np
from scipy.special import betaincinv, ndtr

from archsearch.bayes.coupling import Coupling, couple, fit_coupling

GREEDY, SAMPLED = 0, 1


def _questions(c: float, Q: int, rng, n: int = 8):
    """Q questions: a greedy cell and a sampled one of one model, the greedy answer right where
    Phi(c z + sqrt(1 - c^2) e) > 1 - mu, z the sampled cell's normal score."""
    theta, b, phi = np.array([0.5, -0.3]), rng.normal(0, 1.5, Q), 5.0
    mu = 1 / (1 + np.exp(-(theta[:, None] - b[None, :])))
    z = rng.standard_normal(Q)
    p = betaincinv(mu[SAMPLED] * phi, (1 - mu[SAMPLED]) * phi, ndtr(z))
    greedy = ndtr(c * z + np.sqrt(1 - c ** 2) * rng.standard_normal(Q)) > 1 - mu[GREEDY]
    cell_n = np.array([np.ones(Q), np.full(Q, n)])
    cell_y = np.array([greedy.astype(float), rng.binomial(n, p).astype(float)])
    return theta[None], np.array([1.5]), np.full((1, 2), phi), cell_n, cell_y


def _estimate(c: float, seed: int) -> float:
    rng = np.random.default_rng(seed)
    theta, sigma_b, phi, n, y = _questions(c, 300, rng)
    one, siblings = np.array([True, False]), np.array([[False, True], [False, False]])
    return float(fit_coupling(theta, sigma_b, phi, n, y, one, siblings, 400, rng).mean())


def test_the_coupling_is_learnt_from_questions_with_both_cells():
    assert _estimate(0.9, 0) > 0.65
    assert _estimate(0.0, 1) < 0.3


def test_with_nothing_pairing_them_the_coupling_is_its_uniform_prior():
    rng = np.random.default_rng(2)
    theta, sigma_b, phi, n, y = _questions(0.9, 50, rng)
    n[GREEDY] = 0    # the greedy answer never observed
    c = fit_coupling(theta, sigma_b, phi, n, y, np.array([True, False]), np.array([[False, True], [False, False]]), 2000, rng)
    assert abs(c.mean() - 0.495) < 0.05 and c.min() == 0.0 and c.max() == 0.95


def test_a_drawn_greedy_cell_is_one_answer_right_at_its_rasch_mean_and_follows_its_samples():
    rng = np.random.default_rng(3)
    D, Q = 400, 200
    mu = np.broadcast_to(np.array([0.6, 0.4])[None, :, None], (D, 2, Q)).copy()
    phi = np.full((D, 2, 1), 4.0)
    p = rng.beta(mu * phi, (1 - mu) * phi)
    none = np.zeros((2, Q))
    coupling = Coupling(np.array([True, False]), np.array([[False, True], [False, False]]), np.full(D, 0.9))
    out = couple(p, mu, phi, none, none, coupling, coupling.c, rng)
    assert set(np.unique(out[:, GREEDY])) <= {0.0, 1.0}
    assert abs(out[:, GREEDY].mean() - 0.6) < 0.01
    assert np.array_equal(out[:, SAMPLED], p[:, SAMPLED])
    hard = p[:, SAMPLED] < 0.05
    assert out[:, GREEDY][hard].mean() < 0.2     # independent cells: 0.6
    independent = couple(p, mu, phi, none, none, coupling, np.zeros(D), rng)
    assert abs(independent[:, GREEDY][hard].mean() - 0.6) < 0.05


def test_an_observed_greedy_cell_is_its_answer():
    rng = np.random.default_rng(4)
    D, Q = 50, 3
    mu, phi = np.full((D, 2, Q), 0.5), np.full((D, 2, 1), 4.0)
    n, y = np.array([[1, 1, 0], [4, 4, 4]], float), np.array([[1, 0, 0], [0, 4, 2]], float)
    coupling = Coupling(np.array([True, False]), np.array([[False, True], [False, False]]), np.full(D, 0.9))
    out = couple(rng.beta(2, 2, (D, 2, Q)), mu, phi, n, y, coupling, coupling.c, rng)
    assert (out[:, GREEDY, 0] == 1).all() and (out[:, GREEDY, 1] == 0).all()
