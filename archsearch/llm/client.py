"""The one client every model call goes through: cache, concurrency caps, retries, timeouts,
token and dollar accounting, and an optional hard budget."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field, fields
from functools import partial
from typing import Any

from ..errors import BudgetBusy, BudgetExhausted, LLMCallError
from .budget import Budget
from .cache import CallCache, request_key, request_params
from .latency import HedgeBucket, LatencyTracker
from .models import ModelSpec, is_secret_param
from .prices import LOCAL_PREFIX, cost_usd, worst_case_usd
from .types import Backend, CallResult, Messages, RetryableError

WATCH_S = 0.5   # how often a waiting call re-reads its timeout and hedge point
LATE_S = 0.05   # a watcher waking this much later than it asked was held up by its own process


@dataclass
class ClientStats:
    calls: int = 0          # paid calls that completed
    cache_hits: int = 0     # answered from the cache (or by an identical call in flight)
    failures: int = 0       # calls that failed after every retry
    retries: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    usd: float = 0.0        # what answered calls cost, also those whose caller stopped waiting after the answer
    seconds: float = 0.0    # summed call latency of paid calls
    budget_overruns: int = 0  # calls that cost more than the worst case reserved for them (should stay 0)
    errors: dict[str, int] = field(default_factory=dict)  # every failed attempt, by reason
    timeouts: dict[str, int] = field(default_factory=dict)    # attempts that ran out of time, by model
    hedges: dict[str, int] = field(default_factory=dict)      # second requests sent for a slow call, by model
    hedge_wins: dict[str, int] = field(default_factory=dict)  # ... that answered first
    hedge_usd: float = 0.0  # what the losing requests of hedged calls cost (their worst case when cancelled)

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def record_error(self, reason: str) -> None:
        self.errors[reason] = self.errors.get(reason, 0) + 1

    def held_summary(self) -> str:
        """One line on slow calls, per model: timeouts, hedges and hedge wins ('' when none)."""
        models = sorted(set(self.timeouts) | set(self.hedges))
        return "; ".join(f"{m}: {self.timeouts.get(m, 0)} timed out, {self.hedges.get(m, 0)} hedged "
                         f"({self.hedge_wins.get(m, 0)} hedges answered first)" for m in models)

    @staticmethod
    def count(table: dict[str, int], model_id: str) -> None:
        table[model_id] = table.get(model_id, 0) + 1


class LLMClient:
    def __init__(
        self,
        backend: Backend | None = None,
        cache: CallCache | None = None,
        *,
        max_concurrency: int = 16,
        provider_concurrency: dict[str, int] | None = None,
        timeout_s: float = 60.0,
        max_retries: int = 6,
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 30.0,
        budget: Budget | None = None,
        seed: int | None = None,
        hedging: bool = True,
    ) -> None:
        self.backend = backend
        self.cache = cache
        self.max_concurrency = max_concurrency
        self.provider_concurrency = dict(provider_concurrency or {})
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.budget = budget
        self.hedging = hedging
        self.latency = LatencyTracker()
        self.bucket = HedgeBucket()
        self.stats = ClientStats()
        self._rng = random.Random(seed)
        self._inflight: dict[str, asyncio.Future] = {}
        self._semaphores: dict[str, asyncio.Semaphore] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._litellm: Backend | None = None
        self._http: Backend | None = None

    def _backend(self, model: ModelSpec) -> Backend:
        """An explicit backend serves every model; otherwise litellm, or plain HTTP when asked."""
        if self.backend is not None:
            return self.backend
        if model.transport == "http":
            if self._http is None:
                from .http_backend import HTTPBackend

                self._http = HTTPBackend()
            return self._http
        if self._litellm is None:
            from .litellm_backend import LiteLLMBackend

            self._litellm = LiteLLMBackend()
        return self._litellm

    def timeout_for(self, model: ModelSpec) -> float | None:
        """The model's own timeout, else the client's; none for in-process local models unless set
        (cancelling the wait would not stop llama.cpp's computation, only waste it)."""
        if model.timeout_s is not None:
            return model.timeout_s
        return None if model.id.startswith(LOCAL_PREFIX) else self.timeout_s

    def _semaphore(self, model_id: str) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # asyncio primitives belong to one loop; pipe() runs a fresh one
            self._loop, self._semaphores = loop, {}
        provider = model_id.split("/", 1)[0] if "/" in model_id else "default"
        if provider not in self._semaphores:
            self._semaphores[provider] = asyncio.Semaphore(self.provider_concurrency.get(provider, self.max_concurrency))
        return self._semaphores[provider]

    async def release_loop(self) -> None:
        """Free what is bound to the running event loop (HTTP sessions) before it closes."""
        if self._http is not None:
            await self._http.release_loop()

    async def complete(self, model: ModelSpec, messages: Messages, *, temperature: float = 0.0,
                       max_tokens: int = 512, sample_index: int = 0) -> CallResult:
        params = request_params(model, temperature, max_tokens)
        key = request_key(model, messages, temperature, max_tokens, sample_index)
        if key in self._inflight:
            result = await asyncio.shield(self._inflight[key])
            self.stats.cache_hits += 1
            return _as_cached(result)
        if self.cache is not None and (row := self.cache.get(key)) is not None:
            self.stats.cache_hits += 1
            return CallResult.from_row(row, key)
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            cached = await self._wait_for_other_worker(key, self.timeout_for(model) or 600.0)
            result = cached or await self._paid_call(model, messages, params, sample_index, key)
            future.set_result(result)
            return result
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters re-raise it, nobody else must log it
            raise
        finally:
            del self._inflight[key]
            self._release_claim(key)

    async def _wait_for_other_worker(self, key: str, timeout_s: float) -> CallResult | None:
        """With a shared cache, a call another process is already making is waited for, not repaid."""
        if self.cache is None or not self.cache.claims:
            return None
        while not self.cache.claim(key, ttl_s=timeout_s * (self.max_retries + 1) + 60):
            await asyncio.sleep(0.2)
            if (row := self.cache.get(key)) is not None:
                self.stats.cache_hits += 1
                return CallResult.from_row(row, key)
        if (row := self.cache.get(key)) is not None:  # answered between our lookup and our claim
            self.cache.release(key)
            self.stats.cache_hits += 1
            return CallResult.from_row(row, key)
        return None

    async def _paid_call(self, model: ModelSpec, messages: Messages, params: dict[str, Any],
                         sample_index: int, key: str) -> CallResult:
        async with self._semaphore(model.id):
            held, worst = 0.0, None
            if self.budget is not None:
                worst = worst_case_usd(model, messages, params["max_tokens"])
                held = await self._reserve(worst)
            try:
                resolved = model.call_params()
                secrets = {str(resolved[k]): str(ref) for k, ref in model.params.items()
                           if is_secret_param(k) and resolved[k] != ref}
                sent = {**resolved, "temperature": params["temperature"], "max_tokens": params["max_tokens"]}
                answered: list = []   # the provider's answer once it arrived: paid, whatever fails after it
                record = partial(self._record, key, model, {"messages": messages, "params": params, "sample": sample_index},
                                 answered)
                completion, latency, slow = await self._with_retries(model, messages, sent, sample_index, secrets,
                                                                     worst, record)
            except BaseException:   # e.g. cancelled by a stopping search after the provider answered: still paid
                if self.budget is not None:
                    self.budget.settle(held, cost_usd(model, answered[0]) if answered else 0.0)
                if answered:
                    self.stats.usd += cost_usd(model, answered[0])
                raise
            usd = cost_usd(model, completion)
            if self.budget is not None:
                if usd > held + 1e-12:  # the bound failed (a provider billing past max_tokens?): say so
                    self.stats.budget_overruns += 1
                self.budget.settle(held, usd)
        result = CallResult(completion.text, completion.tokens_in, completion.tokens_out, usd, latency, False, key, **slow)
        self.stats.calls += 1
        self.stats.tokens_in += completion.tokens_in
        self.stats.tokens_out += completion.tokens_out
        self.stats.usd += usd
        self.stats.seconds += latency
        return result

    def _record(self, key: str, model: ModelSpec, request: dict[str, Any], answered: list, completion,
                latency: float) -> None:
        """Write an answer to the cache in the same event-loop step it arrived in: a process killed
        after a provider answered loses only that one write, never answers queued behind other work.
        ``answered`` keeps it first, so that a write that fails still counts the call as paid."""
        answered.append(completion)
        if self.cache is not None:
            self.cache.put(key, model.id, request,
                           {"text": completion.text, "tokens_in": completion.tokens_in,
                            "tokens_out": completion.tokens_out, "cost_usd": cost_usd(model, completion),
                            "latency_s": latency})

    def _release_claim(self, key: str) -> None:
        if self.cache is not None and self.cache.claims:
            self.cache.release(key)

    async def _reserve(self, estimate: float | None) -> float:
        while True:
            try:
                return self.budget.reserve(estimate)
            except BudgetBusy:
                await asyncio.sleep(0.01 + self._rng.random() * 0.02)

    async def _with_retries(self, model: ModelSpec, messages: Messages, params: dict[str, Any], sample_index: int,
                            secrets: dict[str, str] | None = None, worst_usd: float | None = None,
                            record=None):
        """Call with retries; a provider that echoes a resolved secret in an error gets it replaced by
        its os.environ/NAME reference before the message goes anywhere. ``record(completion, seconds)``
        runs as soon as an answer arrives."""
        try:
            return await self._attempts(model, messages, params, sample_index, worst_usd, record)
        except LLMCallError as exc:
            raise LLMCallError(model.id, _scrub(exc.reason, secrets)) from None

    async def _attempts(self, model: ModelSpec, messages: Messages, params: dict[str, Any], sample_index: int,
                        worst_usd: float | None = None, record=None):
        backend, model_id = self._backend(model), model.id
        usual = (model_id, params.get("max_tokens"))      # what the latency of this kind of call is judged by
        last, slow = "", {"timeouts": 0, "hedged": False, "hedge_won": False}
        for attempt in range(self.max_retries + 1):
            start = time.perf_counter()

            async def call(start=start):
                completion = await backend.complete(model_id, messages, params, sample_index)
                seconds = time.perf_counter() - start
                if record is not None:
                    record(completion, seconds)
                return completion, seconds
            try:
                completion, seconds = await self._watched(model, call, usual, worst_usd, slow)
                self.latency.observe(usual, seconds)
                return completion, seconds, slow
            except TimeoutError as exc:
                last, retry_after = f"timed out after {exc.args[0] if exc.args else '?'}s", None  # held: retry it
                self.stats.count(self.stats.timeouts, model_id)
                slow["timeouts"] += 1
            except RetryableError as exc:
                last, retry_after = str(exc), exc.retry_after
            self.stats.record_error("timeout" if last.startswith("timed out") else last.split(":")[0])
            if attempt == self.max_retries:
                break
            self.stats.retries += 1
            delay = min(self.backoff_max_s, self.backoff_base_s * 2 ** attempt)
            delay = max(retry_after or 0.0, self._rng.uniform(0, delay))  # full jitter
            await asyncio.sleep(delay)
        self.stats.failures += 1
        raise LLMCallError(model_id, f"{last} (after {self.max_retries + 1} attempts)")

    async def _watched(self, model: ModelSpec, call, usual: tuple, worst_usd: float | None, slow: dict):
        """One attempt, watched: its timeout is the tracker's (re-read while it waits, so a call that
        started before the model's usual latency was known is not held to the configured 60 s), and
        past the usual latency (p95, or ``hedge_after_s``) one identical request goes too, if the
        bucket and the budget allow: the first answer wins, the other is cancelled. In-process local
        models have neither (a hedge would only compute twice). Raises TimeoutError(seconds)."""
        self.bucket.call()
        configured = self.timeout_for(model)
        if configured is None:
            return await call()
        hedging = self.hedging and model.hedge
        start, tasks, hedge, held = time.perf_counter(), {asyncio.ensure_future(call())}, None, None
        due = start   # when this watcher asked to wake: waking much later means its own loop was held
        try:
            while True:
                timeout = self.latency.timeout(usual, configured)
                after = model.hedge_after_s or self.latency.hedge_after(usual)
                now = time.perf_counter()
                elapsed, late = now - start, now - due
                # Waking late, the delay is this process's (a fit holding the GIL, say): an answer may be
                # waiting to be read, and neither a retry nor a second request would come back sooner.
                # Look again after as long before either.
                if late > LATE_S:
                    wake = [late]
                elif elapsed >= timeout:
                    raise TimeoutError(round(timeout, 2))
                elif hedging and after is not None and elapsed >= after:
                    wake = [timeout - elapsed, WATCH_S]
                    hedging = False   # one decision per attempt
                    if self.bucket.take() and (held := await self._hedge_budget(worst_usd)) is not None:
                        hedge = asyncio.ensure_future(call())
                        tasks.add(hedge)
                        self.stats.count(self.stats.hedges, model.id)
                        slow["hedged"] = True
                else:
                    wake = [timeout - elapsed, WATCH_S] + ([after - elapsed] if hedging and after is not None else [])
                pending, pause = {t for t in tasks if not t.done()}, max(0.0, min(wake))
                due = time.perf_counter() + pause
                done, _ = await asyncio.wait(pending, timeout=pause, return_when=asyncio.FIRST_COMPLETED)
                answered = [t for t in done if t.exception() is None]
                if answered:
                    result = self._settle_hedge(model, answered[0], tasks, hedge, held)
                    slow["hedge_won"] = hedge is not None and answered[0] is hedge
                    held = None
                    return result
                if all(t.done() for t in tasks):
                    raise next(t.exception() for t in tasks if t.done())
        finally:
            for task in tasks:
                task.cancel()
            if held is not None and self.budget is not None:   # a hedge never settled (cancelled): its worst case,
                self.budget.settle(held, held)                    # in the budget and in what the client says it spent
                self.stats.hedge_usd += held

    def _settle_hedge(self, model: ModelSpec, winner, tasks: set, hedge, held):
        """The winner's answer; a hedged call's losing request is accounted (its cost if it answered,
        else its worst case) against the hedge's own reservation."""
        if hedge is not None:
            if winner is hedge:
                self.stats.count(self.stats.hedge_wins, model.id)
            loser = next(t for t in tasks if t is not winner)
            answered = loser.done() and not loser.cancelled() and loser.exception() is None
            spent = cost_usd(model, loser.result()[0]) if answered else (held or 0.0)
            self.stats.hedge_usd += spent
            if self.budget is not None:
                self.budget.settle(held, spent)
        return winner.result()

    async def _hedge_budget(self, worst_usd: float | None) -> float | None:
        """Reserve the hedge's worst case like any call's; None (no hedge) when the budget has no room."""
        if self.budget is None:
            return 0.0
        try:
            return self.budget.reserve(worst_usd)
        except (BudgetBusy, BudgetExhausted):
            return None


def _scrub(text: str, secrets: dict[str, str] | None) -> str:
    for value, ref in (secrets or {}).items():
        if value:
            text = text.replace(value, ref)
    return text


def _as_cached(result: CallResult) -> CallResult:
    return CallResult(result.text, result.tokens_in, result.tokens_out, result.cost_usd,
                      result.latency_s, cached=True, key=result.key)


