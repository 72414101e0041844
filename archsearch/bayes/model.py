"""The NumPyro model of what a search observes (see bayes/MODEL.md for the why).

generation   theta[g] = ability[model of g] + 0.75 * shift[g]   (settings of one model share its ability)
             mu[q, g] = sigmoid(theta[g] - b[q]),  b[q] = sigma_b * z[q]
             p[q, g] ~ Beta(mu phi[g], (1 - mu) phi[g])   (marginalised:)
             y[q,g] ~ BetaBinomial(mu phi[g], (1 - mu) phi[g], n[q,g])
verifier     TPR c[v] = sigmoid(tau[v])                                   tp ~ Bin(y, c)
             FPR f[v,q,g] = sigmoid(gamma[v] - lam[v] * (theta[g] - b[q])) fp ~ Bin(n - y, f)

The per-cell accuracy p[q, g] lets a generator be much worse on some questions than the additive
logit says (temperature 0.8 breaks some problems completely); phi[g] is how tightly cells follow
the additive mean. p is integrated out (Beta-Binomial) in the fit and drawn from its conjugate
posterior Beta(mu phi + y, (1 - mu) phi + n - y) when predicting. Every sample's correctness is
known (the scorer ran), so there are no other discrete latents to marginalise. Arrays are padded
to fixed shapes (``Shapes``) so refits reuse compiled code.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from numpyro.infer import MCMC, NUTS, SVI, Predictive, Trace_ELBO
from numpyro.infer.autoguide import AutoNormal

SETTINGS_SCALE = 0.75   # logits: how far temperature / prompt style typically move one model's ability


@dataclass(frozen=True)
class Shapes:
    """Padded sizes; keep them fixed across refits so JAX compiles once."""

    questions: int = 64
    generators: int = 8
    verifiers: int = 2
    cells: int = 512


@dataclass
class Observations:
    """Per (question, generator) cell: n samples, y correct; per (cell, verifier): accepted counts."""

    q: np.ndarray          # [cells] question index
    g: np.ndarray          # [cells] generator index
    n: np.ndarray          # [cells] samples
    y: np.ndarray          # [cells] correct samples
    tp: np.ndarray         # [cells, verifiers] accepted among correct
    fp: np.ndarray         # [cells, verifiers] accepted among incorrect
    seen: np.ndarray       # [cells, verifiers] 1 where that verifier judged the cell
    n_questions: int
    n_generators: int
    n_verifiers: int
    generator_names: list[str] = field(default_factory=list)
    verifier_names: list[str] = field(default_factory=list)
    generator_model: np.ndarray | None = None   # [generators] which model each generator samples (default: its own)

    def padded(self, shapes: Shapes) -> dict[str, jnp.ndarray]:
        c = len(self.q)
        if c > shapes.cells or self.n_questions > shapes.questions or self.n_generators > shapes.generators \
                or self.n_verifiers > shapes.verifiers:
            raise ValueError(f"observations exceed the padded shapes {shapes}")

        def pad(a, fill=0):
            a = np.asarray(a)
            width = [(0, shapes.cells - c)] + ([(0, shapes.verifiers - a.shape[1])] if a.ndim == 2 else [])
            return jnp.asarray(np.pad(a, width, constant_values=fill))

        mask = np.zeros(shapes.cells, bool)
        mask[:c] = True
        model_of = np.arange(shapes.generators)
        if self.generator_model is not None:
            model_of[: self.n_generators] = self.generator_model
        return {"model_of": jnp.asarray(model_of), "q": pad(self.q), "g": pad(self.g), "n": pad(self.n),
                "y": pad(self.y), "tp": pad(self.tp), "fp": pad(self.fp), "seen": pad(self.seen).astype(bool), "mask": jnp.asarray(mask)}


def model(model_of, q, g, n, y, tp, fp, seen, mask, shapes: Shapes):
    sigma_b = numpyro.sample("sigma_b", dist.HalfNormal(2.0))
    with numpyro.plate("questions", shapes.questions):
        z = numpyro.sample("z", dist.Normal(0.0, 1.0))
    b = numpyro.deterministic("b", sigma_b * z)
    with numpyro.plate("generators", shapes.generators):
        model_ability = numpyro.sample("model_ability", dist.Normal(0.0, 2.0))   # indexed by model
        shift = numpyro.sample("shift", dist.Normal(0.0, 1.0))                    # this generator's settings
        log_phi = numpyro.sample("log_phi", dist.Normal(1.5, 1.0))
    theta = numpyro.deterministic("theta", model_ability[model_of] + SETTINGS_SCALE * shift)
    with numpyro.plate("verifiers", shapes.verifiers):
        tau = numpyro.sample("tau", dist.Normal(1.0, 1.5))
        gamma = numpyro.sample("gamma", dist.Normal(-1.0, 1.5))
        lam = numpyro.sample("lam", dist.Normal(0.0, 1.0))
    skill = theta[g] - b[q]
    mu = jnp.clip(jax.nn.sigmoid(skill), 1e-6, 1 - 1e-6)
    phi = jnp.exp(log_phi)[g]
    with numpyro.plate("cells", shapes.cells):
        numpyro.sample("y", dist.BetaBinomial(mu * phi, (1 - mu) * phi, n).mask(mask), obs=y)
    logit_f = gamma[None, :] - lam[None, :] * skill[:, None]
    judged = seen & mask[:, None]
    with numpyro.plate("cells_v", shapes.cells, dim=-2), numpyro.plate("verifiers_v", shapes.verifiers, dim=-1):
        numpyro.sample("tp", dist.Binomial(y[:, None], logits=jnp.broadcast_to(tau[None, :], judged.shape)).mask(judged), obs=tp)
        numpyro.sample("fp", dist.Binomial((n - y)[:, None], logits=logit_f).mask(judged), obs=fp)


@dataclass
class Posterior:
    """Draws of the latents, trimmed to the real (unpadded) sizes."""

    theta: np.ndarray   # [draws, generators]
    b: np.ndarray       # [draws, questions]
    tau: np.ndarray     # [draws, verifiers]
    gamma: np.ndarray
    lam: np.ndarray
    sigma_b: np.ndarray  # [draws] spread of question difficulty: what new questions look like
    phi: np.ndarray      # [draws, generators] how tightly a cell's accuracy follows theta - b
    cell_n: np.ndarray   # [generators, questions] samples observed per cell (what p is conditioned on)
    cell_y: np.ndarray   # [generators, questions] of which correct
    method: str
    seconds: float
    diagnostics: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def draws(self) -> int:
        return self.theta.shape[0]

    def cell_p(self, rng: np.random.Generator, draws: np.ndarray | None = None) -> np.ndarray:
        """One draw of every cell's accuracy per posterior draw, given what the cell showed: [D, G, Q]."""
        idx = np.arange(self.draws) if draws is None else np.asarray(draws)
        mu = np.clip(1 / (1 + np.exp(-(self.theta[idx][:, :, None] - self.b[idx][:, None, :]))), 1e-6, 1 - 1e-6)
        phi = self.phi[idx][:, :, None]
        n, y = self.cell_n[None], self.cell_y[None]
        return rng.beta(mu * phi + y, (1 - mu) * phi + n - y)

    def tpr(self) -> np.ndarray:
        return 1 / (1 + np.exp(-self.tau))

    def fpr(self, theta_g: np.ndarray | None = None) -> np.ndarray:
        """FPR per draw and verifier, averaged over questions (for a generator if given)."""
        theta_g = self.theta.mean(axis=1) if theta_g is None else theta_g
        skill = theta_g[:, None] - self.b                       # [draws, questions]
        logit = self.gamma[:, :, None] - self.lam[:, :, None] * skill[:, None, :]
        return (1 / (1 + np.exp(-logit))).mean(axis=2)          # [draws, verifiers]


class Surrogate:
    """Fits the model; NUTS while the data are small, SVI (AutoNormal) when large."""

    def __init__(self, shapes: Shapes = Shapes(), nuts_max_cells: int = 400, num_warmup: int = 400,
                 num_samples: int = 400, svi_steps: int = 3000, seed: int = 0) -> None:
        self.shapes, self.nuts_max_cells = shapes, nuts_max_cells
        self.num_warmup, self.num_samples, self.svi_steps, self.seed = num_warmup, num_samples, svi_steps, seed
        self._mcmc: MCMC | None = None
        self._model = functools.partial(model, shapes=shapes)  # static sizes closed over, arrays traced

    def fit(self, obs: Observations, method: str | None = None) -> Posterior:
        data = obs.padded(self.shapes)
        method = method or ("nuts" if len(obs.q) <= self.nuts_max_cells else "svi")
        start = time.perf_counter()
        key = jax.random.PRNGKey(self.seed)
        if method == "nuts":
            samples, diagnostics, warnings = self._nuts(key, data)
            if warnings:  # loud fallback: say so, then use SVI's answer
                samples, _, _ = self._svi(key, data)
                warnings.append("NUTS diagnostics were poor; fell back to SVI")
                method = "svi (fallback)"
        else:
            samples, diagnostics, warnings = self._svi(key, data)
        Q, G, V = obs.n_questions, obs.n_generators, obs.n_verifiers
        cell_n, cell_y = np.zeros((G, Q)), np.zeros((G, Q))
        np.add.at(cell_n, (obs.g, obs.q), obs.n)
        np.add.at(cell_y, (obs.g, obs.q), obs.y)
        return Posterior(theta=np.asarray(samples["theta"])[:, :G], b=np.asarray(samples["b"])[:, :Q],
                         phi=np.exp(np.asarray(samples["log_phi"])[:, :G]), cell_n=cell_n, cell_y=cell_y,
                         tau=np.asarray(samples["tau"])[:, :V], gamma=np.asarray(samples["gamma"])[:, :V],
                         lam=np.asarray(samples["lam"])[:, :V], sigma_b=np.asarray(samples["sigma_b"]), method=method,
                         seconds=time.perf_counter() - start, diagnostics=diagnostics, warnings=warnings)

    def _nuts(self, key, data):
        if self._mcmc is None:
            self._mcmc = MCMC(NUTS(self._model), num_warmup=self.num_warmup, num_samples=self.num_samples,
                              progress_bar=False, jit_model_args=True)
        self._mcmc.run(key, **data)
        samples = self._mcmc.get_samples()
        from numpyro.diagnostics import summary

        stats = summary(self._mcmc.get_samples(group_by_chain=True), prob=0.9)
        watched = ["theta", "tau", "gamma", "sigma_b"]
        r_hat = max(float(np.nanmax(stats[k]["r_hat"])) for k in watched)
        n_eff = min(float(np.nanmin(stats[k]["n_eff"])) for k in watched)
        divergences = int(np.sum(self._mcmc.get_extra_fields()["diverging"]))
        warnings = []
        if divergences > self.num_samples // 20:
            warnings.append(f"{divergences} divergent transitions")
        if n_eff < 50:
            warnings.append(f"min ESS {n_eff:.0f} < 50")
        return samples, {"r_hat_max": r_hat, "ess_min": n_eff, "divergences": divergences}, warnings

    def _svi(self, key, data):
        guide = AutoNormal(self._model)
        svi = SVI(self._model, guide, numpyro.optim.Adam(0.02), Trace_ELBO())
        result = svi.run(key, self.svi_steps, **data, progress_bar=False)
        draws = Predictive(guide, params=result.params, num_samples=self.num_samples)(jax.random.fold_in(key, 1), **data)
        draws["b"] = draws["sigma_b"][:, None] * draws["z"]
        draws["theta"] = draws["model_ability"][:, data["model_of"]] + SETTINGS_SCALE * draws["shift"]
        final = float(np.mean(np.asarray(result.losses[-100:])))
        return draws, {"elbo_final": -final}, []
