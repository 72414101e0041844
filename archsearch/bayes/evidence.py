"""Everything the surrogate knows, in one place: the cache read through the techniques (observe),
the model fitted to it (model), the cost model (costs), and predictions for any list of plans --
on the search questions (replaying what is known) or on new questions (nothing known)."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable

import numpy as np
from scipy.special import ndtri

from ..llm.cache import CallCache
from ..tasks.task import Record, Task
from .costs import CostModel, FreeCalls
from .fit import Surrogate
from .interpret import Simulated, simulate
from .known import generator_structure, judge_models, observations
from .model import Posterior, Shapes, doubled_until
from .non_call import NonCallTimes
from .objects import ObjectArrays, Objects, object_arrays
from .observe import Observer
from .plan import Plan, written_tests
from .steps import step_class
from .steps.state import Context
from .written import written_arrays

DISCOVERY_ROUNDS = 4   # rankings of fusions of rankings...: each round reaches one layer further
# the cells are padded to the whole question x generator grid while it holds at most this many (one
# compiled shape for the whole search); a larger grid, to the power of two above what is observed:
# padded, the first fit on the large synthetic space took 1.6 s for 130 cells, at 256 cells 1.0 s
# (benchmarks/padding_cost.py). The shipped searches' grids are smaller (at most 328 cells)
WHOLE_GRID_CELLS = 512


class _Flat:
    """A posterior stand-in for discovery: every chance 1/2 (what is drawn does not matter there)."""

    def __init__(self, G: int, Q: int, V: int, R: int, F: int) -> None:
        self.theta, self.b = np.zeros((1, G)), np.zeros((1, Q))
        self.tau, self.gamma, self.lam = np.zeros((1, V, G)), np.zeros((1, V, G)), np.zeros((1, V))
        self.rank_beta, self.rank_alpha = np.zeros((1, R)), np.zeros((1, R))
        self.fuse = {k: np.zeros((1, F)) for k in "abde"}
        self.draws = 1

    def cell_p(self, rng, draws=None):
        return np.full((1,) + self.theta.shape[1:] + self.b.shape[1:], 0.5)


class Evidence:
    def __init__(self, task: Task, records: list[Record], cache: CallCache, memo: dict, plans: list[Plan],
                 surrogate: Surrogate | None = None, clock: Callable[[], float] | None = None) -> None:
        """``clock`` (e.g. ``time.time``): a live search's, whose new calls are made in the sitting its
        latest calls were (see ``costs.py``); None: new calls in a sitting not yet begun."""
        self.observer = Observer(task, records, cache, memo)
        self.plans = plans
        self.surrogate = surrogate or Surrogate()
        self.clock = clock
        self.objects: Objects | None = None
        self.arrays: ObjectArrays | None = None
        self.posterior: Posterior | None = None
        self.costs: CostModel | None = None
        self.ctx: Context | None = None
        self._fitted: Posterior | None = None
        self._fitted_on: str | None = None
        self._read_from: tuple | None = None   # what the last read saw: (calls in the cache, the plans)
        self._obs = None
        self._structure = None
        self.non_call = NonCallTimes()   # measured by the runtime; the search sets it from its trials

    @property
    def visible(self) -> int:
        return int(self.observer.verifiable)

    def refresh(self, method: str | None = None) -> Posterior | None:
        """Read the cache, refit if it holds anything new; None while nothing is known. ``method``
        (nuts | svi) overrides the surrogate's choice."""
        read = self._cache_state()
        if read is None or read != self._read_from:   # the cache grew, or other plans: read it again
            self._read_from = read
            self._read_cache()
        obs, structure = self._obs, self._structure
        if len(obs.q) == 0:
            return None
        signature = _signature(obs) + str(method)
        if self._fitted is None or signature != self._fitted_on:   # nothing new bought: the same posterior
            self.surrogate.shapes = self._floor(obs)
            self._fitted, self._fitted_on = self.surrogate.fit(obs, method), signature
        # generators added since the fit, with nothing known of them: drawn from their priors
        self.posterior = self._fitted.for_generators(*structure, np.random.default_rng(len(structure[0])))
        return self.posterior

    def _read_cache(self) -> None:
        """The objects (through the techniques), the model's data and the cost model."""
        self.objects = self.observer.observe(self.plans)
        self._discover()
        self._structure = structure = generator_structure(self.generator_layers())
        layers = self.observer.layers
        judges = {role: [layers[key].model for key in keys] for role, keys in self.objects.judges.items()}
        self._obs = observations(self.objects, self.arrays, structure, self.observer.verifiable, self.verifier_names,
                                 judge_models([layer.model for layer in self.generator_layers()], judges,
                                              self.observer.verifiable))
        self.costs = CostModel(self.objects.calls(), now=self.clock() if self.clock else None)

    def _cache_state(self) -> tuple | None:
        """What the evidence was read from: the number of calls the cache holds (a cached call never
        changes, so an equal count is an equal cache) and the plans, layer by layer. None when the
        cache cannot say how many calls it holds: then every refresh reads it."""
        size = getattr(self.observer.cache, "__len__", None)
        if size is None:
            return None
        return size(), tuple(tuple(layer.key for layer in plan.layers) for plan in self.plans)

    def _floor(self, obs) -> Shapes:
        """Padded shapes big enough for what this search can observe, so that a growing search
        recompiles the model rarely (each recompile costs tens of seconds; a warm refit, a fraction)."""
        Q, G, V = obs.n_questions, obs.n_generators, obs.n_verifiers
        R, F = obs.n_rankers, obs.n_fusers
        cells = G * Q if G * Q <= WHOLE_GRID_CELLS else min(G * Q, doubled_until(len(obs.q), WHOLE_GRID_CELLS // 2))
        return Shapes.fitting(obs, Shapes(questions=Q, generators=G, verifiers=max(V, 1), cells=cells,
                                          rank_obs=max(8, 4 * Q * R), rankers=max(R, 1), fuse_obs=max(8, 4 * Q * F),
                                          fusers=max(F, 1)))

    def _discover(self) -> None:
        """Rankings and fusions whose inputs are all known answers: run every plan once with what is
        known and ask the cache for each such call the runtime would have made, until nothing new.
        Plans without a step that asks (``Step.asks``: a ranking, a fusion) have nothing to discover."""
        asking = any(getattr(step_class(layer.kind), "asks", False) for plan in self.plans for layer in plan.layers)
        for _ in range(DISCOVERY_ROUNDS if asking else 0):
            self._context()
            self.ctx.requests = set()
            flat = _Flat(len(self.objects.generators), self.arrays.questions, len(self.verifier_names),
                         len(self.objects.judges["rank"]), len(self.objects.judges["fuse"]))
            simulate(flat, self.plans, self.ctx, FreeCalls(), np.random.default_rng(0))
            requests, self.ctx.requests = self.ctx.requests, None
            if not requests or not self.observer.resolve(requests):
                break
        self._context()

    def _context(self) -> None:
        self.arrays = dataclasses.replace(object_arrays(self.objects), written=written_arrays(self.objects))
        self.ctx = Context(self.arrays, self.objects, {k: i for i, k in enumerate(self.objects.generators)},
                           {role: {k: i for i, k in enumerate(keys)} for role, keys in self.objects.judges.items()},
                           self.visible)

    def generator_layers(self) -> list:
        return [self.observer.layers[key] for key in self.objects.generators]

    @property
    def verifier_names(self) -> list[str]:
        layers = self.observer.layers
        return (["visible tests"] if self.observer.verifiable else []) + \
            [layers[key].model.id for key in self.objects.judges["verify"]] + \
            [_writer_name(layers[key]) for key in self.objects.judges["test"]] + \
            [_writer_name(layers[key]) + " one at a time" for key in self.objects.judges["test"]]

    def on_search(self, plans: list[Plan], rng: np.random.Generator, draws: np.ndarray | None = None) -> Simulated:
        """What each plan scores and spends on the search questions, replaying the known calls."""
        self._cover(plans)
        return simulate(self.posterior, plans, self.ctx, self.costs, rng, draws, non_call=self.non_call)

    def on_new(self, plans: list[Plan], questions: int, rng: np.random.Generator,
               draws: np.ndarray | None = None, workers: int | None = None, population: bool = False) -> Simulated:
        """The same on ``questions`` questions never seen: difficulties drawn from the fitted spread,
        samples from the cell Beta around the Rasch mean, nothing replayed, every call made in a
        sitting not yet begun. ``workers``: threads, as ``simulate`` takes them. ``population``: what
        the task's questions at large score, not one split of ``questions`` (``new_questions``)."""
        self._cover(plans)
        post = self.posterior
        unseen = np.zeros((post.theta.shape[1], questions))
        b, testable = new_questions(rng, post.draws, questions, self.arrays.testable.mean(), population)
        fresh = dataclasses.replace(post, b=b * post.sigma_b[:, None], cell_n=unseen, cell_y=unseen)
        ctx = dataclasses.replace(self.ctx, arrays=ObjectArrays.fresh(self.arrays, questions, testable), objects=None)
        return simulate(fresh, plans, ctx, self.costs.fresh(), rng, draws, workers=workers, non_call=self.non_call)

    def on_split(self, plan: Plan, questions: int, rng: np.random.Generator, replicates: int = 8) -> np.ndarray:
        """[replicates x draws] what a split of ``questions`` new questions would score (its questions
        drawn at random), ``replicates`` splits per posterior draw: an interval's ends are whole
        questions, and with one split per draw they moved with the random stream (over six seeds, a
        low end ranged over 22-25 of 41 questions; with eight, 23 every time: ``report_posterior.py
        --noise``; the GSM8K re-split's coverage went 0.90 -> 0.80 with no other change)."""
        return np.concatenate([self.on_new([plan], questions, rng).accuracy[:, 0] for _ in range(replicates)])

    def _cover(self, plans: list[Plan]) -> None:
        """Plans the evidence was not built for must use only its generators and judges."""
        for plan in plans:
            for layer in plan.layers:
                table = self.ctx.generators if layer.kind == "generate" else self.ctx.judges.get(layer.kind)
                if layer.kind == "test" and not written_tests(layer):
                    continue
                if table is not None and layer.key not in table:
                    raise ValueError(f"the evidence does not know the {layer.kind} layer {layer.key[:80]}")

    def unbought_calls(self, plans: list[Plan], sim: Simulated) -> np.ndarray:
        """[P] calls each plan would buy on the search questions (mean over the simulated draws)."""
        return sim.bought.mean(axis=0)


def new_questions(rng: np.random.Generator, draws: int, questions: int, testable_share: float,
                  population: bool) -> tuple[np.ndarray, np.ndarray]:
    """([draws, questions] standard-normal difficulties, [questions] which have tests). Drawn at random,
    they are a split's questions: its score varies as a real split's would. For a ``population``
    figure (the accuracy on new questions the report ranks by) they are stratified -- difficulties at
    evenly spaced quantiles, each jittered within its stratum and shuffled, the testable share exact --
    the same estimand with less simulation noise: 1,024 stratified questions give the intervals of
    2,048 drawn at random in half the time (``benchmarks/report_posterior.py --noise``)."""
    if not population:
        return rng.normal(size=(draws, questions)), rng.random(questions) < testable_share
    strata = rng.permuted(np.tile(np.arange(questions), (draws, 1)), axis=1)
    difficulty = ndtri((strata + rng.random((draws, questions))) / questions)
    return difficulty, rng.permutation(questions) < round(testable_share * questions)


def _writer_name(layer) -> str:
    p = layer.params
    return f"tests by {layer.model.id} ({p.n_calls}x{p.n_tests}{', with the task' if p.source == 'task+model' else ''})"


def _signature(obs) -> str:
    """A digest of the model's data: equal data, equal posterior (a refit would only cost time). The
    generators nothing is known of do not count: their priors are drawn without a refit."""
    digest = hashlib.sha256()
    seen = np.unique(obs.g)
    for f in dataclasses.fields(obs):
        value = getattr(obs, f.name)
        if f.name.startswith("generator_") and value is not None:
            value = np.asarray(value)[seen] if isinstance(value, np.ndarray) else [value[i] for i in seen]
        if f.name == "n_generators":
            value = len(seen)
        digest.update(f.name.encode())
        digest.update(np.ascontiguousarray(value).tobytes() if isinstance(value, np.ndarray) else repr(value).encode())
    return digest.hexdigest()
