"""Fitting the surrogate's model: NUTS while the data are small, warm-started SVI when large, with
compiled code kept per padded shape (see ``Shapes``) so a refit of the same shape does not recompile."""

from __future__ import annotations

import functools
import time

import jax
import jax.numpy as jnp
import numpy as np
from numpyro.diagnostics import split_gelman_rubin
from numpyro.infer import MCMC, NUTS, init_to_median
from numpyro.infer.util import initialize_model

from .background import BackgroundJob
from .model import Observations, Posterior, Shapes, model
from .resources import NUTS_MEMORY_MAPS, memory_maps_left
from .svi import settle, starting_state, stored_svi_functions, svi_functions

# where a cold SVI fit starts every observed verifier's FPR slope: false positives rising on hard
# questions. From the prior median (0) SVI settled on both HumanEval pools, for most seeds, in the
# mode of the other sign, tens of nats less dense (bayes/MODEL.md, "Fit")
LAM_START = 0.5
# NUTS chains that settle in modes this far apart (R-hat of their potential energy) are not one posterior
MODES_APART_RHAT = 1.1
NUTS_FIELDS = ("potential_energy", "diverging")   # kept per draw: modes are told apart by energy


def _diagnostics(grouped: dict) -> tuple[float, float]:
    from numpyro.diagnostics import summary

    stats = summary(grouped, prob=0.9)
    watched = ["theta", "tau", "gamma", "sigma_b"]
    return (max(float(np.nanmax(stats[k]["r_hat"])) for k in watched),
            min(float(np.nanmin(stats[k]["n_eff"])) for k in watched))


def _batch(mcmc: MCMC) -> tuple[dict, np.ndarray, np.ndarray]:
    """One run's draws [chains, draws, ...], potential energies and divergences [chains, draws]."""
    extra = mcmc.get_extra_fields(group_by_chain=True)
    return ({k: np.asarray(v) for k, v in mcmc.get_samples(group_by_chain=True).items()},
            np.asarray(extra["potential_energy"]), np.asarray(extra["diverging"]))


def _denser_chains(energy: np.ndarray) -> tuple[list[int], float]:
    """The chains to keep, and how far apart (nats of mean potential energy) the kept and the rest
    lie: all of them when they agree, else the one of the lowest mean energy (the highest density).
    On the HumanEval pools a chain settled now and then in a second mode about 45 nats less dense
    (``bayes/MODEL.md``, "Fit"), which one chain alone cannot tell from the other."""
    if len(energy) < 2:
        return [0], 0.0
    r_hat = float(split_gelman_rubin(energy))
    means = energy.mean(axis=1)
    if r_hat <= MODES_APART_RHAT:
        return list(range(len(energy))), 0.0
    best = int(np.argmin(means))
    return [best], float(np.max(means) - means[best])


def difficulty_start(obs: Observations, shapes: Shapes) -> dict[str, np.ndarray]:
    """Where NUTS starts the question difficulties: each question's pooled empirical logit of being
    answered wrong (centred; its spread as sigma_b); unseen and padded questions at 0."""
    right, tried = np.zeros(shapes.questions), np.zeros(shapes.questions)
    np.add.at(right, obs.q, obs.y)
    np.add.at(tried, obs.q, obs.n)
    seen = tried > 0
    hard = -np.log((right[seen] + 0.5) / (tried[seen] - right[seen] + 0.5))
    hard = hard - hard.mean() if len(hard) else hard
    sigma = float(np.clip(hard.std(), 0.3, 3.0)) if len(hard) > 1 else 1.0
    z = np.zeros(shapes.questions)
    z[seen] = hard / sigma
    return {"z": z, "sigma_b": np.asarray(sigma)}


def svi_start(obs: Observations, shapes: Shapes, locs: dict) -> dict:
    """The guide's starting locations ``locs`` (unconstrained) with the difficulties where the data
    point (``difficulty_start``; sigma_b is positive, so its location is a log) and the observed
    verifiers' FPR slopes at ``LAM_START``."""
    begin = difficulty_start(obs, shapes)
    lam = np.where(np.arange(shapes.verifiers) < obs.n_verifiers, LAM_START, 0.0)
    values = {"z_auto_loc": begin["z"], "sigma_b_auto_loc": np.log(begin["sigma_b"]), "lam_auto_loc": lam}
    return locs | {k: jnp.asarray(v, locs[k].dtype).reshape(jnp.shape(locs[k])) for k, v in values.items()}


def _start_at(values: dict, site=None):
    """An init strategy: ``values`` for the sites it names, the prior median elsewhere."""
    if site is None:
        return functools.partial(_start_at, values)
    if site["type"] == "sample" and not site["is_observed"] and site["name"] in values:
        return values[site["name"]]
    return init_to_median(site)


class Surrogate:
    """Fits the model; NUTS while the data are small, SVI (AutoNormal) when large. Shapes grow with
    the data (powers of two above ``shapes``); compiled code is kept per shape."""

    def __init__(self, shapes: Shapes = Shapes(), nuts_max_cells: int = 400, num_warmup: int = 400,
                 num_samples: int = 400, svi_steps: int = 3000, seed: int = 0, method: str | None = None,
                 warm_steps: int = 800, chains: int = 2, background_refits_over: int | None = None) -> None:
        self.shapes, self.nuts_max_cells, self.method, self.chains = shapes, nuts_max_cells, method, chains
        self.num_warmup, self.num_samples, self.svi_steps, self.seed = num_warmup, num_samples, svi_steps, seed
        self.warm_steps, self.background_refits_over = warm_steps, background_refits_over
        self._background = BackgroundJob("archsearch-refit")   # a cold refit, keyed by its latent sizes
        self._mcmc: dict[Shapes, MCMC] = {}
        # the last SVI solution per latent size (``Shapes.latent``) and which verifiers it had seen judge
        self._svi_params: dict[tuple[int, ...], tuple[dict, np.ndarray]] = {}
        self.last_shapes: Shapes | None = None

    def fit(self, obs: Observations, method: str | None = None) -> Posterior:
        self._join(self._background.due())
        shapes = Shapes.fitting(obs, self.shapes)
        self.last_shapes = shapes
        data = obs.padded(shapes)
        if method == "auto":   # NUTS while the data are small, whatever the surrogate was built with
            method = "nuts" if len(obs.q) <= self.nuts_max_cells else "svi"
        method = method or self.method or ("nuts" if len(obs.q) <= self.nuts_max_cells else "svi")
        start = time.perf_counter()
        key = jax.random.PRNGKey(self.seed)
        kernel = functools.partial(model, shapes=shapes)  # static sizes closed over, arrays traced
        left = memory_maps_left() if method == "nuts" else None
        if method == "nuts" and (left is None or left >= NUTS_MEMORY_MAPS):
            samples, diagnostics, warnings = self._nuts(key, data, shapes, kernel, difficulty_start(obs, shapes))
            if warnings:  # loud fallback: say so, then use SVI's answer
                samples, _, _ = self._svi(key, data, shapes, obs)
                warnings.append("NUTS diagnostics were poor; fell back to SVI")
                method = "svi (fallback)"
        else:
            samples, diagnostics, warnings = self._svi(key, data, shapes, obs)
            if method == "nuts":   # a loud fallback beats XLA aborting the whole process in a compile
                warnings.append(f"NUTS skipped: this process can open {left} more memory maps and a NUTS fit "
                                f"keeps thousands; fitted by SVI")
                method = "svi (fallback)"
        Q, G, V = obs.n_questions, obs.n_generators, obs.n_verifiers
        cell_n, cell_y = np.zeros((G, Q)), np.zeros((G, Q))
        np.add.at(cell_n, (obs.g, obs.q), obs.n)
        np.add.at(cell_y, (obs.g, obs.q), obs.y)
        s = {k: np.asarray(v) for k, v in samples.items()}
        R, F = obs.n_rankers, obs.n_fusers
        latent = {k: s[k] for k in ("model_ability", "shift", "prompt", "tau_prompt", "log_phi", "s_tau", "s_gam")}
        latent |= {"tau_v": s["tau"], "gamma_v": s["gamma"]}
        return Posterior(theta=s["theta"][:, :G], b=s["b"][:, :Q], phi=np.exp(s["log_phi"][:, :G]), cell_n=cell_n,
                         cell_y=cell_y, tau=s["tau_vg"][:, :V, :G], gamma=s["gamma_vg"][:, :V, :G], lam=s["lam"][:, :V],
                         sigma_b=s["sigma_b"], rank_beta=s["rank_beta"][:, :R], rank_alpha=s["rank_alpha"][:, :R],
                         fuse={k: s[f"fuse_{k}"][:, :F] for k in "abde"}, method=method,
                         seconds=time.perf_counter() - start, diagnostics=diagnostics, warnings=warnings, latent=latent)

    def _nuts(self, key, data, shapes: Shapes, kernel, start: dict, extra_batches: int = 2):
        """NUTS, ``chains`` chains from ``start`` (``difficulty_start``), each with its own key. Chains
        that settle in separate modes (R-hat of their potential energy over ``MODES_APART_RHAT``): the
        chain of the highest density is kept, and the diagnostics say by how much. While the kept
        chains' effective sample size is short of 50, or their draws of ``num_samples``, keep sampling
        from where the chains are (no new warm-up) for up to ``extra_batches`` more batches before
        calling the fit poor."""
        if shapes not in self._mcmc:
            self._mcmc[shapes] = MCMC(NUTS(kernel), num_warmup=self.num_warmup, num_samples=-(-self.num_samples // self.chains),
                                      num_chains=self.chains, chain_method="sequential", progress_bar=False,
                                      jit_model_args=True)
        mcmc = self._mcmc[shapes]
        mcmc.post_warmup_state = None
        first = initialize_model(key, kernel, init_strategy=functools.partial(_start_at, start), model_kwargs=data).param_info.z
        mcmc.run(key, init_params={k: jnp.stack([v] * self.chains) for k, v in first.items()}, extra_fields=NUTS_FIELDS, **data)
        batches = [_batch(mcmc)]
        while True:
            grouped = {k: np.concatenate([b[0][k] for b in batches], axis=1) for k in batches[0][0]}
            energy = np.concatenate([b[1] for b in batches], axis=1)          # [chains, draws]
            kept, apart = _denser_chains(energy)
            grouped = {k: v[kept] for k, v in grouped.items()}
            r_hat, n_eff = _diagnostics(grouped)
            drawn = len(kept) * energy.shape[1]
            if (n_eff >= 50 and drawn >= self.num_samples) or len(batches) > extra_batches:
                break
            mcmc.post_warmup_state = mcmc.last_state
            mcmc.run(mcmc.post_warmup_state.rng_key, extra_fields=NUTS_FIELDS, **data)
            batches.append(_batch(mcmc))
        mcmc.post_warmup_state = None
        # the same number of draws however many batches it took: what is simulated from them costs per draw
        every = np.linspace(0, energy.shape[1] - 1, -(-self.num_samples // len(kept))).round().astype(int)
        samples = {k: v[:, every].reshape((-1,) + v.shape[2:])[:self.num_samples] for k, v in grouped.items()}
        divergences = int(sum(b[2][kept].sum() for b in batches))
        warnings = []
        if divergences > len(batches) * self.num_samples // 20:
            warnings.append(f"{divergences} divergent transitions")
        if n_eff < 50:
            warnings.append(f"min ESS {n_eff:.0f} < 50")
        return samples, {"r_hat_max": r_hat, "ess_min": n_eff, "divergences": divergences, "batches": len(batches),
                         "chains": self.chains, "chains_kept": len(kept), "modes_apart_nats": apart}, warnings

    def _svi(self, key, data, shapes: Shapes, obs: Observations):
        """SVI whose start, steps and draws are compiled once per shape (``svi.run`` compiles its loop
        anew on every call: 15 s of a 16-s refit). A refit starts from the last solution of the same
        latent sizes; a first fit from ``svi_start``, and so does a refit at a verifier's first
        verdicts (warm, it stayed in the less dense mode: ``bayes/MODEL.md``, "Fit"). On a large grid
        (``background_refits_over``) those two fit short (``warm_steps``, warm at first verdicts) and
        the cold fit runs in a background thread: the next fit starts from the short one, the fit
        after it waits for the cold one and starts from that, whatever the timing. Steps run in
        compiled chunks (``svi.settle``); each compiled function traces its own guide (``svi._traced_svi``)."""
        folder = jax.config.jax_compilation_cache_dir   # where this process keeps compiled code
        start, steps, finish = (stored_svi_functions(shapes, self.num_samples, folder) if folder
                                else svi_functions(shapes, self.num_samples))
        judged = np.asarray(data["seen"], bool).any(axis=0)   # padded: one length per shape
        warm, judged_then = self._svi_params.get(shapes.latent, (None, judged))
        first_verdicts = bool(np.any(judged & ~judged_then))
        over = self.background_refits_over   # a large grid: more question x generator cells than this
        in_background = (warm is None or first_verdicts) and over is not None and shapes.questions * shapes.generators > over
        if in_background and self._background.pending:   # the last fit's job first: one at a time
            self._join(self._background.wait())
            warm = self._svi_params.get(shapes.latent, (None, judged))[0]
        if first_verdicts and not in_background:
            warm = None   # a verifier's first verdicts: refit cold (see the docstring)
        locs, rng_key = start(key, data)
        state = starting_state(locs if warm else svi_start(obs, shapes, locs), rng_key, warm)
        short = warm is not None or in_background   # a first fit in the background's stead: a warm one's steps
        state, mean, taken = settle(steps, key, state, data, self.warm_steps if short else self.svi_steps, short)
        params, draws = finish(key, state, data)
        if in_background:   # traced by now (numpyro's handlers are not thread-safe), so the thread only runs code
            cold = starting_state(svi_start(obs, shapes, locs), rng_key, None)
            stop = self._background.stop
            self._background.submit(shapes.latent, lambda: (
                finish(key, settle(steps, key, cold, data, self.svi_steps, False, stop)[0], data)[0], judged))
        self._svi_params[shapes.latent] = (params, judged)
        how = ("warm" if warm else "short") + ", cold in the background" if in_background else "warm" if warm else "cold"
        return draws, {"elbo_final": -mean, "svi_steps": taken, "svi_start": how}, []   # the last chunk's mean

    def discard_background(self) -> None:
        """End a background refit nobody will wait for (the search is over), between two chunks."""
        self._background.discard()

    def _join(self, done: tuple | None) -> None:
        """A background cold refit's ``(latent sizes, (solution, judged))``: later fits start from it."""
        if done is not None:
            self._svi_params[done[0]] = done[1]



def use_compile_cache(folder: str | None) -> None:
    """Keep the fits' compiled code on disk (JAX's persistent compilation cache), so that the next
    search on this machine does not compile the same shapes again (NUTS and SVI each spend 15-30 s
    compiling). ``None`` leaves JAX as it is, as does a cache folder the user already set for JAX."""
    if folder and not jax.config.jax_compilation_cache_dir:
        jax.config.update("jax_compilation_cache_dir", folder)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)

