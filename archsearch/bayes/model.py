"""The NumPyro model of what a search observes (see bayes/MODEL.md for the why).

generation   theta[g] = ability[model of g] + 0.75 * shift[setting of g] + tau_p * prompt[variant of g]
             (settings of one model share its ability; a prompt variant other than the model's first is
             a shrunken effect, so an untried variant is predicted from its model with honest width)
             mu[q, g] = sigmoid(theta[g] - b[q]),  b[q] = sigma_b * z[q]
             y[q,g] ~ BetaBinomial(mu phi[g], (1 - mu) phi[g], n[q,g])      (per-cell accuracy p integrated out)
verifiers    TPR c[v,g] = sigmoid(tau[v] + s_tau e[v,g])                          tp ~ Bin(y, c)
             FPR f[v,g,q] = sigmoid(gamma[v] + s_gam e'[v,g] - lam[v] (theta[g] - b[q]))   fp ~ Bin(n - y, f)
rankers      a ranker picks its top two by Plackett-Luce with utility beta[r] * correct + alpha[r] * [first]
fusers       P(fused answer right) = sigmoid(a[f] + b[f] logit((m + 1/2) / (k + 1)) - d[f] b[q] + e[f] critiqued)
             for k inputs of which m are right

Every sample's correctness is known (the scorer ran), so nothing discrete is left to marginalise.
Arrays are padded to ``Shapes`` that grow by powers of two as the data grow, so a refit reuses
compiled code until a dimension doubles.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist

SETTINGS_SCALE = 0.75   # logits: how far temperature typically moves one model's ability
PROMPT_SCALE = 0.5      # logits: the prior scale of how far a prompt variant moves it (half-normal)
KIND_SCALE = 0.7       # logits: spread of a verifier kind's mean, and of one verifier around it (together ~1)


def doubled_until(needed: int, floor: int) -> int:
    """``floor`` doubled until it holds ``needed``."""
    size = floor
    while size < needed:
        size *= 2
    return size


@dataclass(frozen=True)
class Shapes:
    """Padded sizes; a refit with the same shapes reuses the compiled model."""

    questions: int = 64
    generators: int = 8
    verifiers: int = 2
    cells: int = 512
    rank_obs: int = 8
    rank_width: int = 8
    rankers: int = 2
    fuse_obs: int = 8
    fusers: int = 2

    @property
    def latent(self) -> tuple[int, ...]:
        """The sizes the model's latent variables have; the rest (cells, rank and fuse observations,
        rank width) size only the data, so a fit of one latent size can start from another's solution."""
        return self.questions, self.generators, self.verifiers, self.rankers, self.fusers

    @classmethod
    def fitting(cls, obs: Observations, floor: Shapes | None = None) -> Shapes:
        """The smallest shapes (powers of two above ``floor``) that hold ``obs``."""
        floor = floor or cls()
        needed = {"questions": obs.n_questions, "generators": obs.n_generators, "verifiers": obs.n_verifiers,
                  "cells": len(obs.q), "rank_obs": len(obs.rank_r), "rank_width": obs.rank_y.shape[1],
                  "rankers": obs.n_rankers, "fuse_obs": len(obs.fuse_f), "fusers": obs.n_fusers}
        return cls(**{f.name: doubled_until(needed[f.name], getattr(floor, f.name)) for f in fields(cls)})


def _empty(*shape, dtype=float) -> np.ndarray:
    return np.zeros(shape, dtype)


@dataclass
class Observations:
    """Per (question, generator) cell: n samples, y correct; per (cell, verifier): accepted counts;
    per rank call: the candidates' correctness and its top two; per fuse call: k inputs, m right."""

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
    generator_setting: np.ndarray | None = None  # [generators] its setting (temperature, ...; default: its own)
    generator_variant: np.ndarray | None = None  # [generators] its prompt variant, -1 for its model's first (default)
    verifier_runs_tests: np.ndarray | None = None  # [verifiers] 1 for tests that run (task's, model's), 0 for a judge
    judged_n: np.ndarray | None = None  # [cells, verifiers] samples that verifier judged (default: all where seen)
    judged_y: np.ndarray | None = None  # [cells, verifiers] of which correct
    rank_r: np.ndarray = field(default_factory=lambda: _empty(0, dtype=int))        # [rank obs] ranker
    rank_y: np.ndarray = field(default_factory=lambda: _empty(0, 2))                # [rank obs, width] correct
    rank_valid: np.ndarray = field(default_factory=lambda: _empty(0, 2, dtype=bool))
    rank_first: np.ndarray = field(default_factory=lambda: _empty(0, dtype=int))
    rank_second: np.ndarray = field(default_factory=lambda: _empty(0, dtype=int))  # -1: only the top one kept
    n_rankers: int = 0
    fuse_f: np.ndarray = field(default_factory=lambda: _empty(0, dtype=int))
    fuse_q: np.ndarray = field(default_factory=lambda: _empty(0, dtype=int))
    fuse_k: np.ndarray = field(default_factory=lambda: _empty(0))
    fuse_m: np.ndarray = field(default_factory=lambda: _empty(0))
    fuse_crit: np.ndarray = field(default_factory=lambda: _empty(0))
    fuse_y: np.ndarray = field(default_factory=lambda: _empty(0))
    n_fusers: int = 0
    judge_model: dict[str, np.ndarray] = field(default_factory=dict)  # role -> [judges] the model index of each
    # verifier, ranker and fuser among the generators' models (-1: its model samples nothing, or no model)

    def padded(self, shapes: Shapes) -> dict[str, jnp.ndarray]:
        if shapes != Shapes.fitting(self, shapes):
            raise ValueError(f"observations exceed the padded shapes {shapes}")
        c, V = len(self.q), shapes.verifiers

        def pad(a, size, fill=0, width=None):
            a = np.asarray(a)
            spec = [(0, size - a.shape[0])] + ([(0, width - a.shape[1])] if width is not None else [])
            return jnp.asarray(np.pad(a, spec, constant_values=fill))

        model_of, setting_of = np.arange(shapes.generators), np.arange(shapes.generators)
        variant_of = np.full(shapes.generators, -1)
        for target, given in ((model_of, self.generator_model), (setting_of, self.generator_setting),
                              (variant_of, self.generator_variant)):
            if given is not None:
                target[: self.n_generators] = given
        verifier_kind = np.zeros(shapes.verifiers, int)
        if self.verifier_runs_tests is not None:
            verifier_kind[: self.n_verifiers] = np.asarray(self.verifier_runs_tests, int)
        R, W = shapes.rank_obs, shapes.rank_width
        seen = np.asarray(self.seen, bool)
        jn = self.judged_n if self.judged_n is not None else np.where(seen, np.asarray(self.n)[:, None], 0)
        jy = self.judged_y if self.judged_y is not None else np.where(seen, np.asarray(self.y)[:, None], 0)
        return {"model_of": jnp.asarray(model_of), "setting_of": jnp.asarray(setting_of),
                "variant_of": jnp.asarray(variant_of), "verifier_kind": jnp.asarray(verifier_kind),
                "q": pad(self.q, shapes.cells), "g": pad(self.g, shapes.cells),
                "n": pad(self.n, shapes.cells), "y": pad(self.y, shapes.cells), "tp": pad(self.tp, shapes.cells, width=V),
                "fp": pad(self.fp, shapes.cells, width=V), "jn": pad(jn, shapes.cells, width=V),
                "jy": pad(jy, shapes.cells, width=V), "seen": pad(seen, shapes.cells, width=V).astype(bool),
                "mask": jnp.asarray(np.arange(shapes.cells) < c),
                "rank_r": pad(self.rank_r, R), "rank_y": pad(self.rank_y, R, width=W),
                "rank_valid": pad(self.rank_valid, R, width=W).astype(bool), "rank_first": pad(self.rank_first, R),
                "rank_second": pad(self.rank_second, R, fill=-1), "rank_mask": jnp.asarray(np.arange(R) < len(self.rank_r)),
                "fuse_f": pad(self.fuse_f, shapes.fuse_obs), "fuse_q": pad(self.fuse_q, shapes.fuse_obs),
                "fuse_k": pad(self.fuse_k, shapes.fuse_obs, fill=1), "fuse_m": pad(self.fuse_m, shapes.fuse_obs),
                "fuse_crit": pad(self.fuse_crit, shapes.fuse_obs), "fuse_y": pad(self.fuse_y, shapes.fuse_obs),
                "fuse_mask": jnp.asarray(np.arange(shapes.fuse_obs) < len(self.fuse_f)),
                **{f"{role}_model": pad(self.judge_model.get(role, np.zeros(0, int)), size, fill=-1)
                   for role, size in (("verifier", V), ("ranker", shapes.rankers), ("fuser", shapes.fusers))}}


def fuse_share(m, k):
    """logit((m + 1/2) / (k + 1)): the share of right inputs, kept off 0 and 1."""
    share = (m + 0.5) / (k + 1.0)
    return jnp.log(share) - jnp.log1p(-share)


def model(model_of, setting_of, variant_of, verifier_kind, q, g, n, y, tp, fp, jn, jy, seen, mask, rank_r, rank_y, rank_valid,
          rank_first, rank_second, rank_mask, fuse_f, fuse_q, fuse_k, fuse_m, fuse_crit, fuse_y, fuse_mask,
          verifier_model, ranker_model, fuser_model, shapes: Shapes):
    sigma_b = numpyro.sample("sigma_b", dist.HalfNormal(2.0))
    with numpyro.plate("questions", shapes.questions):
        z = numpyro.sample("z", dist.Normal(0.0, 1.0))
    b = numpyro.deterministic("b", sigma_b * z)
    with numpyro.plate("generators", shapes.generators):
        model_ability = numpyro.sample("model_ability", dist.Normal(0.0, 1.5))   # indexed by model
        shift = numpyro.sample("shift", dist.Normal(0.0, 1.0))                    # indexed by setting
        prompt = numpyro.sample("prompt", dist.Normal(0.0, 1.0))                  # indexed by prompt variant
        log_phi = numpyro.sample("log_phi", dist.Normal(1.5, 1.0))
    tau_prompt = numpyro.sample("tau_prompt", dist.HalfNormal(PROMPT_SCALE))
    delta = jnp.where(variant_of >= 0, tau_prompt * prompt[jnp.maximum(variant_of, 0)], 0.0)
    theta = numpyro.deterministic("theta", model_ability[model_of] + SETTINGS_SCALE * shift[setting_of] + delta)
    # a judge's, ranker's or fuser's skill follows its model's ability where that model also samples
    # (a weak model judges near chance): how much, per role, is learnt
    follows = numpyro.sample("skill_follows_ability", dist.HalfNormal(0.5).expand([3]).to_event(1))

    def ability_of(index):
        return jnp.where(index >= 0, model_ability[jnp.maximum(index, 0)], 0.0)

    # verifiers of one kind (LLM judges; tests that run: the task's or a model's) share a mean, so a
    # writer of tests nobody has bought yet is priced from the tests that did run, not from judges
    kind_tau = numpyro.sample("kind_tau", dist.Normal(1.0, KIND_SCALE).expand([2]).to_event(1))
    kind_gamma = numpyro.sample("kind_gamma", dist.Normal(-1.0, KIND_SCALE).expand([2]).to_event(1))
    with numpyro.plate("verifiers", shapes.verifiers):
        tau_raw = numpyro.sample("tau_raw", dist.Normal(kind_tau[verifier_kind], KIND_SCALE))
        gamma_raw = numpyro.sample("gamma_raw", dist.Normal(kind_gamma[verifier_kind], KIND_SCALE))
        lam = numpyro.sample("lam", dist.Normal(0.0, 1.0))
    tau = numpyro.deterministic("tau", tau_raw + follows[0] * ability_of(verifier_model))
    gamma = numpyro.deterministic("gamma", gamma_raw - follows[0] * ability_of(verifier_model))
    s_tau = numpyro.sample("s_tau", dist.HalfNormal(0.7))
    s_gam = numpyro.sample("s_gam", dist.HalfNormal(0.7))
    with numpyro.plate("verifier_generator", shapes.verifiers * shapes.generators):
        e_tau = numpyro.sample("e_tau", dist.Normal(0.0, 1.0))
        e_gam = numpyro.sample("e_gam", dist.Normal(0.0, 1.0))
    tau_vg = numpyro.deterministic("tau_vg", tau[:, None] + s_tau * e_tau.reshape(shapes.verifiers, shapes.generators))
    gam_vg = numpyro.deterministic("gamma_vg", gamma[:, None] + s_gam * e_gam.reshape(shapes.verifiers, shapes.generators))
    skill = theta[g] - b[q]
    mu = jnp.clip(jax.nn.sigmoid(skill), 1e-6, 1 - 1e-6)
    phi = jnp.exp(log_phi)[g]
    with numpyro.plate("cells", shapes.cells):
        numpyro.sample("y", dist.BetaBinomial(mu * phi, (1 - mu) * phi, n).mask(mask), obs=y)
    logit_c = tau_vg.T[g]                                          # [cells, verifiers]
    logit_f = gam_vg.T[g] - lam[None, :] * skill[:, None]
    judged = seen & mask[:, None]
    with numpyro.plate("cells_v", shapes.cells, dim=-2), numpyro.plate("verifiers_v", shapes.verifiers, dim=-1):
        numpyro.sample("tp", dist.Binomial(jy, logits=logit_c).mask(judged), obs=tp)
        numpyro.sample("fp", dist.Binomial(jn - jy, logits=logit_f).mask(judged), obs=fp)
    _rankers(follows[1] * ability_of(ranker_model), rank_r, rank_y, rank_valid, rank_first, rank_second, rank_mask, shapes)
    _fusers(follows[2] * ability_of(fuser_model), b, fuse_f, fuse_q, fuse_k, fuse_m, fuse_crit, fuse_y, fuse_mask, shapes)


def _rankers(skill_shift, rank_r, rank_y, rank_valid, rank_first, rank_second, rank_mask, shapes: Shapes) -> None:
    """Plackett-Luce over a rank call's candidates: the first two picks, strength on right ones and a
    first-slot bias per ranker."""
    with numpyro.plate("rankers", shapes.rankers):
        rank_beta_raw = numpyro.sample("rank_beta_raw", dist.Normal(1.0, 1.0))
        rank_alpha = numpyro.sample("rank_alpha", dist.Normal(0.0, 1.0))
    rank_beta = numpyro.deterministic("rank_beta", rank_beta_raw + skill_shift)
    first_slot = (jnp.arange(shapes.rank_width) == 0)[None, :]
    util = rank_beta[rank_r][:, None] * rank_y + rank_alpha[rank_r][:, None] * first_slot
    util = jnp.where(rank_valid, util, -1e9)
    logp = jax.nn.log_softmax(util, axis=-1)
    top = jnp.take_along_axis(logp, rank_first[:, None], axis=-1)[:, 0]
    rest = jnp.where(jnp.arange(shapes.rank_width)[None, :] == rank_first[:, None], -1e9, util)
    second = jnp.take_along_axis(jax.nn.log_softmax(rest, axis=-1), jnp.maximum(rank_second, 0)[:, None], axis=-1)[:, 0]
    numpyro.factor("rank", jnp.sum(jnp.where(rank_mask, top + jnp.where(rank_second >= 0, second, 0.0), 0.0)))


def _fusers(skill_shift, b, fuse_f, fuse_q, fuse_k, fuse_m, fuse_crit, fuse_y, fuse_mask, shapes: Shapes) -> None:
    """P(fused answer right) in the share of right inputs, the question's difficulty and a critique."""
    with numpyro.plate("fusers", shapes.fusers):
        fuse_a_raw = numpyro.sample("fuse_a_raw", dist.Normal(0.0, 1.0))
        fuse_b = numpyro.sample("fuse_b", dist.Normal(1.0, 0.5))
        fuse_d = numpyro.sample("fuse_d", dist.Normal(0.0, 0.5))
        fuse_e = numpyro.sample("fuse_e", dist.Normal(0.0, 0.5))
    fuse_a = numpyro.deterministic("fuse_a", fuse_a_raw + skill_shift)
    logit_fuse = (fuse_a[fuse_f] + fuse_b[fuse_f] * fuse_share(fuse_m, fuse_k) - fuse_d[fuse_f] * b[fuse_q]
                  + fuse_e[fuse_f] * fuse_crit)
    with numpyro.plate("fuse_obs", shapes.fuse_obs):
        numpyro.sample("fuse", dist.Bernoulli(logits=logit_fuse).mask(fuse_mask), obs=fuse_y)


@dataclass
class Posterior:
    """Draws of the latents, trimmed to the real (unpadded) sizes."""

    theta: np.ndarray   # [draws, generators]
    b: np.ndarray       # [draws, questions]
    tau: np.ndarray     # [draws, verifiers, generators] logit TPR
    gamma: np.ndarray   # [draws, verifiers, generators] FPR intercept
    lam: np.ndarray     # [draws, verifiers] FPR slope in skill
    sigma_b: np.ndarray  # [draws] spread of question difficulty: what new questions look like
    phi: np.ndarray      # [draws, generators] how tightly a cell's accuracy follows theta - b
    cell_n: np.ndarray   # [generators, questions] samples observed per cell (what p is conditioned on)
    cell_y: np.ndarray   # [generators, questions] of which correct
    method: str
    seconds: float
    rank_beta: np.ndarray = field(default_factory=lambda: np.zeros((1, 0)))    # [draws, rankers]
    rank_alpha: np.ndarray = field(default_factory=lambda: np.zeros((1, 0)))
    fuse: dict[str, np.ndarray] = field(default_factory=dict)                 # a, b, d, e: [draws, fusers]
    diagnostics: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    latent: dict[str, np.ndarray] = field(default_factory=dict)   # padded draws: what ``for_generators`` rebuilds from

    @property
    def draws(self) -> int:
        return self.theta.shape[0]

    def for_generators(self, model_of: np.ndarray, setting_of: np.ndarray, variant_of: np.ndarray,
                       rng: np.random.Generator) -> Posterior:
        """The posterior over a longer list of generators (the first ones as fitted): a new one is its
        model's ability plus its setting's shift and its prompt variant's effect, each the fitted draw
        where that model, setting or variant was fitted, else a draw from its prior -- no refit."""
        G, D, fitted = len(model_of), self.draws, self.theta.shape[1]
        if G <= fitted or not self.latent:
            return self

        def pick(name: str, index: np.ndarray, scale: float, loc: float = 0.0) -> np.ndarray:
            have = self.latent[name]
            prior = loc + scale * rng.standard_normal((D, len(index)))
            inside = index < have.shape[1]
            return np.where(inside[None], have[:, np.minimum(index, have.shape[1] - 1)], prior)

        new = np.arange(fitted, G)
        tau_p = self.latent["tau_prompt"][:, None]
        theta = (pick("model_ability", model_of[new], 1.5) + SETTINGS_SCALE * pick("shift", setting_of[new], 1.0)
                 + np.where(variant_of[new] >= 0, tau_p * pick("prompt", np.maximum(variant_of[new], 0), 1.0), 0.0))
        phi = np.exp(pick("log_phi", new, 1.0, 1.5))
        V = self.tau.shape[1]
        e = rng.standard_normal((2, D, V, len(new)))
        tau = self.latent["tau_v"][:, :V, None] + self.latent["s_tau"][:, None, None] * e[0]
        gamma = self.latent["gamma_v"][:, :V, None] + self.latent["s_gam"][:, None, None] * e[1]
        Q = self.b.shape[1]
        return dataclasses.replace(
            self, theta=np.concatenate([self.theta, theta], axis=1), phi=np.concatenate([self.phi, phi], axis=1),
            tau=np.concatenate([self.tau, tau], axis=2), gamma=np.concatenate([self.gamma, gamma], axis=2),
            cell_n=np.concatenate([self.cell_n, np.zeros((len(new), Q))]),
            cell_y=np.concatenate([self.cell_y, np.zeros((len(new), Q))]))

    def cell_p(self, rng: np.random.Generator, draws: np.ndarray | None = None) -> np.ndarray:
        """One draw of every cell's accuracy per posterior draw, given what the cell showed: [D, G, Q]."""
        idx = np.arange(self.draws) if draws is None else np.asarray(draws)
        mu = np.clip(1 / (1 + np.exp(-(self.theta[idx][:, :, None] - self.b[idx][:, None, :]))), 1e-6, 1 - 1e-6)
        phi = self.phi[idx][:, :, None]
        n, y = self.cell_n[None], self.cell_y[None]
        return rng.beta(mu * phi + y, (1 - mu) * phi + n - y)

    def tpr(self) -> np.ndarray:
        """[draws, verifiers, generators]."""
        return 1 / (1 + np.exp(-self.tau))

    def fpr(self, g: int) -> np.ndarray:
        """FPR per draw and verifier for generator g, averaged over the questions: [draws, verifiers]."""
        skill = self.theta[:, g][:, None] - self.b                               # [D, Q]
        logit = self.gamma[:, :, g][:, :, None] - self.lam[:, :, None] * skill[:, None, :]
        return (1 / (1 + np.exp(-logit))).mean(axis=2)
