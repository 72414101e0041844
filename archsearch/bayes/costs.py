"""The cost side of the surrogate: tokens in, tokens out and latency of one call, per (model, role).

    log tokens_in  = w0 + w1 log(k) + eps          k: candidates in the prompt (1 for generate,
    log tokens_out = w0 + w1 log(k) + eps             verify, critique; n for rank and fuse)
    log latency    = w0 + w1 log(tokens_out + 1) + w2 log(tokens_in + 1) + u_session + eps

each eps ~ N(0, s^2): conjugate Normal-Inverse-Gamma regressions, one per (model, role, quantity).
Latency is drawn given the call's drawn tokens (long answers are slow). Calls recorded in one
sitting share its load (``u_session``; a new sitting begins after half an hour without a call, and
every ten minutes: on a machine shared with other jobs a judge ran at 0.11 to 2.0 s per output
token within one morning, swinging within minutes). The regression is fitted within sittings,
their spread estimated (shrunk towards a prior of two sittings at 0.4), and calls not yet made
share ONE fresh draw of it per posterior draw -- the sitting a search's new calls will be made in.
A live search whose cache's latest call is less than half an hour old is still in that sitting
(``now``): its new calls get the sitting's load as the calls so far show it (every role of the
model: the load is the machine's or the provider's), shrunk towards the average sitting. The prior
is centred on what the same role showed for every model (else, for a role never seen, what the same
model showed in its other roles; else generic values) with the weight of about two calls, so a
(model, role) never observed gets wide but sane predictions. A pipeline never run gets its
$/question and latency from draws of these, plus the recorded figures of the calls the cache
already holds (see replay.py).
"""

from __future__ import annotations

import copy
import threading
import zlib
from dataclasses import dataclass

import numpy as np

QUANTITIES = ("tokens_in", "tokens_out", "latency_s")
GENERIC = {"tokens_in": [np.log(300.0), 0.0], "tokens_out": [np.log(150.0), 0.0], "latency_s": [-3.0, 1.0, 0.0]}
A0, B0 = 2.0, 1.0          # InvGamma prior on s^2: mean 1 (a factor e on the log scale), weak
PRIOR_CALLS = 2.0          # the prior's weight on w, in calls
SESSION_GAP_S = 1800.0     # calls further apart than this were recorded in different sittings
SITTING_MAX_S = 600.0      # and a sitting lasts at most this long
SESSION_SD, SESSION_PRIOR = 0.4, 2.0   # prior spread of a sitting's log-latency offset, and its weight in sittings
# what one call can take at most: a context's tokens, a model's longest timeout (``timeout_s <= 3600``).
# The log-normal chain (tokens drawn, latency given them) of a role never seen has tails of 1e26 s
# without them, and one such draw sets a pipeline's mean latency
CAP = {"tokens_in": 2.0 ** 17, "tokens_out": 2.0 ** 17, "latency_s": 3600.0}


def sittings(created: np.ndarray) -> np.ndarray:
    """A sitting index per call: calls sorted by time, a new sitting after each long gap or once a
    sitting has lasted ``SITTING_MAX_S`` (a machine's load drifts within an hour of recording;
    unknown times, 0, form their own)."""
    order = np.argsort(created, kind="stable")
    index = np.empty(len(created), int)
    sitting, began, last = 0, None, None
    for i in order:
        t = created[i]
        if began is not None and (t - last > SESSION_GAP_S or t - began > SITTING_MAX_S):
            sitting, began = sitting + 1, None
        began, last = (t if began is None else began), t
        index[i] = sitting
    return index


@dataclass(frozen=True)
class _Sittings:
    """What one (model, role)'s latencies show of the sittings they were recorded in."""

    spread: float              # sd of a sitting's log-latency offset
    within: float              # variance of a call around its sitting's offset
    offsets: dict[int, tuple[float, int]]   # sitting -> (mean offset from the average sitting, calls)


def _within_sittings(y: np.ndarray, x: np.ndarray, sitting: np.ndarray, prior_mean) -> tuple[np.ndarray, _Sittings]:
    """(y with each sitting's offset removed, what the sittings show): the pooled fit's residuals
    averaged per sitting are the offsets; their spread beyond what their own noise explains is the
    sittings'."""
    pooled = _fit(x, y, prior_mean)
    r = y - x @ pooled.mean
    ids, inverse, counts = np.unique(sitting, return_inverse=True, return_counts=True)
    means = np.bincount(inverse, weights=r) / counts
    within = float(np.mean((r - means[inverse]) ** 2)) if len(r) > len(ids) else 1.0
    between = float(np.var(means, ddof=1) - np.mean(within / counts)) if len(ids) > 1 else 0.0
    spread = (SESSION_PRIOR * SESSION_SD ** 2 + (len(ids) - 1) * max(between, 0.0)) / (SESSION_PRIOR + len(ids) - 1)
    offsets = {int(i): (float(m - means.mean()), int(n)) for i, m, n in zip(ids, means, counts)}
    return y - (means[inverse] - means.mean()), _Sittings(float(np.sqrt(spread)), within, offsets)


def current_sitting(own: _Sittings, same_model: list[_Sittings], sitting: int) -> tuple[float, float] | None:
    """(mean, sd) of the log-latency offset of ``sitting`` for one (model, role), ``own``, from every
    role of its model that made calls there (``same_model``; the load is the machine's or the
    provider's): each role's offset there, moved onto ``own``'s scale through the sittings both were
    recorded in, weighted by calls, and shrunk towards 0 (``own``'s average sitting) by its spread.
    None when no role of the model made a call in it, or none shares a sitting with ``own``."""
    total, weight = 0.0, 0
    for other in same_model:
        if sitting not in other.offsets:
            continue
        shared = [s for s in own.offsets if s in other.offsets]
        if not shared:
            continue
        level = np.mean([own.offsets[s][0] - other.offsets[s][0] for s in shared])
        k = other.offsets[sitting][1]
        total, weight = total + k * (other.offsets[sitting][0] + level), weight + k
    if not weight:
        return None
    precision = 1.0 / own.spread ** 2 + weight / max(own.within, 1e-6)
    return total / weight * (weight / max(own.within, 1e-6)) / precision, float(np.sqrt(1.0 / precision))


@dataclass(frozen=True)
class _Fit:
    mean: np.ndarray        # [d] posterior mean of the weights
    scale: np.ndarray       # [d, d] posterior V_n (covariance / s^2)
    a: float
    b: float

    def draw(self, rng: np.random.Generator, draws: int) -> tuple[np.ndarray, np.ndarray]:
        s2 = self.b / rng.gamma(self.a, 1.0, size=draws)
        w = self.mean + np.sqrt(s2)[:, None] * rng.multivariate_normal(np.zeros(len(self.mean)), self.scale, size=draws)
        return w, np.sqrt(s2)


def _design(calls, qty: str) -> np.ndarray:
    if qty == "latency_s":
        return np.column_stack([np.ones(len(calls)), np.log1p([c.tokens_out for c in calls]),
                                np.log1p([c.tokens_in for c in calls])])
    return np.column_stack([np.ones(len(calls)), np.log(np.maximum([c.inputs for c in calls], 1.0))])


def _fit(x: np.ndarray, y: np.ndarray, prior_mean: np.ndarray) -> _Fit:
    prior_mean = np.asarray(prior_mean, float)
    v0_inv = np.diag([PRIOR_CALLS] + [PRIOR_CALLS * 4.0] * (len(prior_mean) - 1))
    vn = np.linalg.inv(v0_inv + x.T @ x)
    mn = vn @ (v0_inv @ prior_mean + x.T @ y)
    a = A0 + len(y) / 2
    b = B0 + 0.5 * float(y @ y + prior_mean @ v0_inv @ prior_mean - mn @ np.linalg.inv(vn) @ mn)
    return _Fit(mn, vn, a, max(b, 1e-6))


class CostModel:
    """Fitted from the cached calls (``observe.CallObs``); ``now`` (seconds since the epoch, as the
    calls' ``created``): when the search runs, so that new calls share the sitting it is in."""

    def __init__(self, calls, now: float | None = None) -> None:
        self.fits: dict[tuple[str, str, str], _Fit] = {}
        self.role_prior: dict[tuple[str, str], np.ndarray] = {}
        self.model_prior: dict[tuple[str, str], np.ndarray] = {}   # a role no model was seen in: the model's other calls
        self.counts: dict[tuple[str, str], int] = {}
        self.session_sd: dict[tuple[str, str], float] = {}
        self.current: dict[tuple[str, str], tuple[float, float]] = {}   # (mean, sd) of the sitting new calls are made in
        self.usd_per_token: dict[str, float] = {}
        spent: dict[str, list[float]] = {}
        for c in calls:
            row = spent.setdefault(c.model, [0.0, 0.0])
            row[0], row[1] = row[0] + c.usd, row[1] + c.tokens_in + c.tokens_out
        self.usd_per_token = {model: usd / tokens for model, (usd, tokens) in spent.items() if tokens > 0}
        groups: dict[tuple[str, str], list] = {}
        for c in calls:
            if c.tokens_in > 0 or c.tokens_out > 0:
                groups.setdefault((c.model, c.role), []).append(c)
        by_role: dict[str, list] = {}
        for (_, role), rows in groups.items():
            by_role.setdefault(role, []).extend(rows)
        by_model: dict[str, list] = {}
        for (model, _), rows in groups.items():
            by_model.setdefault(model, []).extend(rows)
        for table, grouped in ((self.role_prior, by_role), (self.model_prior, by_model)):
            for name, rows in grouped.items():
                for qty in QUANTITIES:
                    y = np.log(np.maximum([getattr(c, qty) for c in rows], 1e-3))
                    table[(name, qty)] = _fit(_design(rows, qty), y, GENERIC[qty]).mean
        created = np.array([c.created for c in calls], float)
        when = sittings(created)
        sitting_of = {id(c): s for c, s in zip(calls, when)}
        seen: dict[tuple[str, str], _Sittings] = {}
        for (model, role), rows in groups.items():
            self.counts[(model, role)] = len(rows)
            for qty in QUANTITIES:
                y = np.log(np.maximum([getattr(c, qty) for c in rows], 1e-3))
                x = _design(rows, qty)
                if qty == "latency_s":
                    y, sat = _within_sittings(y, x, np.array([sitting_of[id(c)] for c in rows]), self.role_prior[(role, qty)])
                    self.session_sd[(model, role)], seen[(model, role)] = sat.spread, sat
                self.fits[(model, role, qty)] = _fit(x, y, self.role_prior[(role, qty)])
        latest = int(np.argmax(created)) if len(created) else None
        if now is not None and latest is not None and created[latest] > 0 and now - created[latest] <= SESSION_GAP_S:
            for (model, role), sat in seen.items():
                found = current_sitting(sat, [v for (m, _), v in seen.items() if m == model], int(when[latest]))
                if found is not None:
                    self.current[(model, role)] = found

    def fresh(self) -> CostModel:
        """The same model for calls made in a sitting not yet begun (a report's new questions)."""
        out = copy.copy(self)
        out.current = {}
        return out

    def fit_for(self, model: str, role: str, qty: str) -> _Fit:
        if (model, role, qty) in self.fits:
            return self.fits[(model, role, qty)]
        prior = np.asarray(self.role_prior.get((role, qty), self.model_prior.get((model, qty), GENERIC[qty])), float)
        return _fit(np.zeros((0, len(prior))), np.zeros(0), prior)

    def draw(self, rng: np.random.Generator, draws: int, keyed: bool = False) -> CostDraw:
        return CostDraw(self, rng, draws, keyed)


class CostDraw:
    """Posterior draws of every (model, role) cost regression, made on first use: from ``rng`` in the
    order of first use, or, ``keyed``, each from its own stream seeded by its key, so that threads
    asking in any order get the same draws."""

    priced = True   # a simulation charges each call's tokens, dollars and latency

    def __init__(self, model: CostModel, rng: np.random.Generator, draws: int, keyed: bool = False) -> None:
        self.model, self.rng, self.draws = model, rng, draws
        self._params: dict[tuple[str, str, str], tuple[np.ndarray, np.ndarray]] = {}
        self.sitting = rng.standard_normal(draws)   # the load of the sitting new calls are made in, per draw
        self._seed = int(rng.integers(2 ** 63)) if keyed else None
        self._lock = threading.Lock()

    def params(self, model: str, role: str, qty: str) -> tuple[np.ndarray, np.ndarray]:
        key = (model, role, qty)
        with self._lock:
            if key not in self._params:
                rng = self.rng if self._seed is None else np.random.default_rng(
                    [self._seed, zlib.crc32("\0".join(key).encode())])
                self._params[key] = self.model.fit_for(*key).draw(rng, self.draws)
            return self._params[key]

    def sample(self, model: str, role: str, inputs, shape: tuple[int, ...], rows: np.ndarray | None = None,
               rng: np.random.Generator | None = None) -> np.ndarray:
        """[3, *shape] tokens in, tokens out, latency of calls never made; axis 0 of ``shape`` is the
        draw (``rows`` picks which of the drawn parameter sets, default all in order). Latency is
        drawn given the drawn tokens; the calls' own noise from ``rng`` (default this draw's)."""
        rng = self.rng if rng is None else rng
        lead = (slice(None),) + (None,) * (len(shape) - 1)

        def draw(qty: str, features: list[np.ndarray]) -> np.ndarray:
            """The intercept, then each weight times its feature, added in the design's order."""
            w, s = self.params(model, role, qty)
            if rows is not None:
                w, s = w[rows], s[rows]
            mu = w[:, 0][lead]
            for i, f in enumerate(features, 1):
                mu = mu + w[:, i][lead] * f
            return np.exp(np.minimum(mu + s[lead] * rng.standard_normal(shape), np.log(CAP[qty])))

        logk = np.log(np.maximum(np.asarray(inputs, float), 1.0))   # broadcast against ``shape`` when used
        tokens_in, tokens_out = draw("tokens_in", [logk]), draw("tokens_out", [logk])
        sitting = self.sitting if rows is None else self.sitting[rows]
        if (model, role) in self.model.current:   # the sitting a live search is in
            mean, sd = self.model.current[(model, role)]
            load = np.exp(mean + sd * sitting)[lead]
        else:
            load = np.exp(self.model.session_sd.get((model, role), SESSION_SD) * sitting)[lead]
        latency = np.minimum(draw("latency_s", [np.log1p(tokens_out), np.log1p(tokens_in)]) * load, CAP["latency_s"])
        return np.stack([tokens_in, tokens_out, latency])


class FreeCalls:
    """The cost side when only outcomes matter (finding which calls a simulation would ask the cache
    for): every call costs nothing, and nothing is drawn for it."""

    priced = False   # nothing to charge: a simulation skips the bookkeeping

    @property
    def usd_per_token(self) -> dict[str, float]:
        return {}

    @property
    def model(self) -> FreeCalls:
        return self

    def draw(self, rng: np.random.Generator, draws: int, keyed: bool = False) -> FreeCalls:
        return self

    def sample(self, model: str, role: str, inputs, shape: tuple[int, ...], rows: np.ndarray | None = None,
               rng: np.random.Generator | None = None) -> np.ndarray:
        return np.zeros((3, *shape))
