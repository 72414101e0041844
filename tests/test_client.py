"""The LLM client: cache keys, retries with backoff, timeouts, accounting, in-flight dedupe, budget."""

import asyncio
import time

import pytest

from archsearch.errors import BudgetExhausted, LLMCallError
from archsearch.llm import Budget, CallCache, Completion, LLMClient, RetryableError, call_key
from archsearch.spec import ModelSpec, Price
from archsearch.testing import FakeLLM

MSG = [{"role": "user", "content": "hello"}]
PRICED = ModelSpec(id="fake/m", price=Price(input_per_mtok=100_000, output_per_mtok=200_000))


class Flaky:
    """Fails the first ``failures`` calls with a retryable error, then answers."""

    def __init__(self, failures: int, exc=RetryableError("429 rate limited")):
        self.failures, self.exc, self.calls = failures, exc, 0

    async def complete(self, model_id, messages, params, sample_index=0):
        self.calls += 1
        if self.calls <= self.failures:
            raise self.exc
        return Completion("ok", 3, 2)


class Hanging:
    def __init__(self):
        self.calls = 0

    async def complete(self, model_id, messages, params, sample_index=0):
        self.calls += 1
        await asyncio.sleep(3600)


def run(coro):
    return asyncio.run(coro)


def test_key_separates_sample_index_params_and_model():
    base = call_key("m", MSG, {"temperature": 1.0}, 0)
    assert base == call_key("m", MSG, {"temperature": 1.0}, 0)
    assert base != call_key("m", MSG, {"temperature": 1.0}, 1)
    assert base != call_key("m", MSG, {"temperature": 0.5}, 0)
    assert base != call_key("n", MSG, {"temperature": 1.0}, 0)


def test_retries_then_succeeds_and_counts_retries():
    backend = Flaky(3)
    client = LLMClient(backend, backoff_base_s=0.001, max_retries=5)
    result = run(client.complete(PRICED, MSG))
    assert result.text == "ok" and backend.calls == 4
    assert client.stats.retries == 3 and client.stats.calls == 1 and client.stats.failures == 0


def test_gives_up_after_max_retries_with_one_line_error():
    client = LLMClient(Flaky(100), backoff_base_s=0.001, max_retries=2)
    with pytest.raises(LLMCallError, match=r"call to fake/m failed: 429 rate limited \(after 3 attempts\)"):
        run(client.complete(PRICED, MSG))
    assert client.stats.failures == 1 and client.stats.calls == 0


def test_timeout_is_retried_then_reported():
    backend = Hanging()
    client = LLMClient(backend, timeout_s=0.05, backoff_base_s=0.001, max_retries=1)
    with pytest.raises(LLMCallError, match="timed out after 0.05s"):
        run(client.complete(PRICED, MSG))
    assert backend.calls == 2


def test_retry_after_is_honoured():
    backend = Flaky(1, RetryableError("429", retry_after=0.2))
    client = LLMClient(backend, backoff_base_s=0.0001)

    async def timed():
        loop = asyncio.get_running_loop()
        start = loop.time()
        await client.complete(PRICED, MSG)
        return loop.time() - start

    assert run(timed()) >= 0.19


def test_dollars_from_explicit_price_and_zero_for_local():
    client = LLMClient(Flaky(0))
    assert run(client.complete(PRICED, MSG)).cost_usd == pytest.approx(3 * 0.1 + 2 * 0.2)
    local = run(client.complete(ModelSpec(id="local/x"), MSG))
    assert local.cost_usd == 0.0 and local.tokens_in == 3


def test_identical_calls_in_flight_are_made_once():
    backend = FakeLLM(latency_s=0.05)
    client = LLMClient(backend)

    async def both():
        return await asyncio.gather(*(client.complete(PRICED, MSG, sample_index=0) for _ in range(5)))

    results = run(both())
    assert backend.calls == 1
    assert sum(r.cached for r in results) == 4
    assert client.stats.calls == 1 and client.stats.cache_hits == 4


def test_cache_persists_across_clients(tmp_path):
    url = f"sqlite:///{tmp_path / 'c.sqlite'}"
    first = run(LLMClient(FakeLLM(), CallCache(url)).complete(PRICED, MSG, temperature=1.0, sample_index=3))
    backend = FakeLLM()
    again = run(LLMClient(backend, CallCache(url)).complete(PRICED, MSG, temperature=1.0, sample_index=3))
    assert backend.calls == 0 and again.cached and again.text == first.text
    assert again.cost_usd == first.cost_usd  # what it cost when made, for estimates
    assert CallCache(url).keys() == {first.key}   # what the surrogate's observer reads in one query


def test_a_paid_answer_the_cache_cannot_write_still_counts_against_the_budget(tmp_path):
    """The provider answered, then writing the answer to the cache failed: the call was paid, so the
    budget counts it (and the error is raised, not swallowed)."""
    class Full(CallCache):
        def put(self, *args, **kwargs):
            raise OSError("disk full")

    budget = Budget(usd=100.0)
    client = LLMClient(Flaky(0), Full(f"sqlite:///{tmp_path / 'c.sqlite'}"), budget=budget)
    with pytest.raises(OSError, match="disk full"):
        run(client.complete(PRICED, MSG, max_tokens=4))
    assert budget.spent_usd == pytest.approx(3 * 0.1 + 2 * 0.2) and budget.reserved_usd == pytest.approx(0.0)


def test_budget_is_never_exceeded_under_concurrency():
    # worst case per call: (5 bytes + 104 template tokens) * $0.1 + 4 tokens-out * $0.2 = $11.7
    budget = Budget(usd=25.0)
    client = LLMClient(FakeLLM(latency_s=0.01), budget=budget, max_concurrency=32)

    async def many():
        async def one(i):
            try:
                return await client.complete(PRICED, MSG, max_tokens=4, sample_index=i)
            except BudgetExhausted:
                return None
        return await asyncio.gather(*(one(i) for i in range(100)))

    results = run(many())
    assert budget.spent_usd <= 25.0
    assert budget.reserved_usd == pytest.approx(0.0)
    assert 0 < sum(r is not None for r in results) < 100


def test_call_budget_counts_started_calls(tmp_path):
    budget = Budget(calls=3)
    client = LLMClient(FakeLLM(), CallCache(f"sqlite:///{tmp_path / 'c.sqlite'}"), budget=budget)

    async def go():
        for i in range(3):
            await client.complete(PRICED, MSG, sample_index=i)
        with pytest.raises(BudgetExhausted):
            await client.complete(PRICED, MSG, sample_index=99)
        assert (await client.complete(PRICED, MSG, sample_index=0)).cached  # cache hits are free

    run(go())


class WorstCaseTokenizer:
    """Bills the most a byte-level tokenizer and a chat template can: one token per UTF-8 byte plus
    the template's tokens, and every ``max_tokens`` of output."""

    async def complete(self, model_id, messages, params, sample_index=0):
        from archsearch.llm.prices import prompt_token_bound

        await asyncio.sleep(0.001 * (sample_index % 7))
        return Completion(text="x", tokens_in=prompt_token_bound(messages), tokens_out=params["max_tokens"])


def test_adversarial_prompts_never_take_spend_past_the_cap():
    prompts = ["数学题：一个农民有三块地，每块地有十二只母鸡。" * 20, "🧮🐔🥚" * 150, "7" * 2000,
               "def f(x):\n    return {k: v for k, v in x.items()}\n" * 40]
    for p in prompts:  # the old estimate (characters / 2) undercounts every one of them
        assert len(p) / 2 < len(p.encode("utf-8"))
    model = ModelSpec(id="priced/m", price=Price(input_per_mtok=3.0, output_per_mtok=15.0))
    budget = Budget(usd=0.25)
    client = LLMClient(WorstCaseTokenizer(), max_concurrency=64, budget=budget, max_retries=0)

    async def one(i):
        try:
            await client.complete(model, [{"role": "user", "content": prompts[i % 4] + str(i)}], max_tokens=256,
                                  sample_index=i)
        except BudgetExhausted:
            return False
        return True

    async def run():
        return await asyncio.gather(*(one(i) for i in range(2000)))

    done = asyncio.run(run())
    assert 0 < sum(done) < 2000                      # the cap bound: some calls ran, the rest were refused
    assert budget.spent_usd <= 0.25 + 1e-9 and budget.reserved_usd == pytest.approx(0.0, abs=1e-9)
    assert client.stats.budget_overruns == 0         # no call cost more than was reserved for it
    assert budget.spent_usd > 0.2                    # and the bound is not so loose that it wastes the cap


class _Held(FakeLLM):
    """A fake model that holds every ``every``-th request for ``hold_s`` seconds (a stuck connection)."""

    def __init__(self, every: int = 7, hold_s: float = 30.0, **kw):
        super().__init__(**kw)
        self.every, self.hold_s, self.started = every, hold_s, 0

    async def complete(self, model_id, messages, params, sample_index=0):
        self.started += 1
        if self.started % self.every == 0:
            await asyncio.sleep(self.hold_s)
        await asyncio.sleep(0.01)
        return await super().complete(model_id, messages, params, sample_index)


def test_held_requests_are_hedged_or_timed_out_within_budget():
    """Every 7th request hangs for 30 s: after the first answers the client neither waits the
    configured timeout nor spends past its budget, and it says how often it hedged."""
    from archsearch.llm import Budget

    model = ModelSpec(id="fake/priced", price={"input_per_mtok": 1000.0, "output_per_mtok": 1000.0}, timeout_s=60)
    budget = Budget(usd=0.5)
    client = LLMClient(_Held(), budget=budget, max_concurrency=8, max_retries=3)

    async def many():
        done, failed = [], 0
        for batch in range(8):
            out = await asyncio.gather(*(client.complete(model, [{"role": "user", "content": f"q{batch}-{i}"}],
                                                         max_tokens=20) for i in range(8)), return_exceptions=True)
            done += [o for o in out if not isinstance(o, BaseException)]
            failed += sum(isinstance(o, BaseException) for o in out)
        return done, failed

    start = time.perf_counter()
    done, failed = asyncio.run(many())
    assert time.perf_counter() - start < 30          # no answer waited out a hold
    assert sum(client.stats.hedges.values()) + sum(client.stats.timeouts.values()) > 0
    assert budget.spent_usd <= budget.usd + 1e-12 and abs(budget.reserved_usd) < 1e-12
    assert budget.spent_usd == pytest.approx(client.stats.usd + client.stats.hedge_usd)
    assert client.stats.budget_overruns == 0 and len(done) + failed == 64


class _HangsTwice(FakeLLM):
    """A fake whose first two requests (a call and its hedge) hang; later ones answer at once."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.started = 0

    async def complete(self, model_id, messages, params, sample_index=0):
        self.started += 1
        if self.started <= 2:
            await asyncio.sleep(30)
        return await super().complete(model_id, messages, params, sample_index)


def test_a_hedge_outstanding_when_its_attempt_times_out_is_counted_where_the_budget_counts_it():
    """The attempt times out with its hedge still running: the budget keeps the hedge's worst case,
    and so must the client's own account of what it spent (a search's report reads that one)."""
    from archsearch.llm import Budget

    model = ModelSpec(id="fake/priced", price={"input_per_mtok": 1000.0, "output_per_mtok": 1000.0}, timeout_s=0.3,
                      hedge_after_s=0.05)
    budget = Budget(usd=1.0)
    client = LLMClient(_HangsTwice(), budget=budget, max_retries=1, backoff_base_s=0.0)
    asyncio.run(client.complete(model, [{"role": "user", "content": "q"}], max_tokens=20))
    assert sum(client.stats.hedges.values()) == 1 and sum(client.stats.timeouts.values()) == 1
    assert client.stats.hedge_usd > 0
    assert budget.spent_usd == pytest.approx(client.stats.usd + client.stats.hedge_usd)


class _AnswersAt(FakeLLM):
    """Answers every request after ``seconds``."""

    def __init__(self, seconds: float, **kw):
        super().__init__(**kw)
        self.seconds = seconds

    async def complete(self, model_id, messages, params, sample_index=0):
        await asyncio.sleep(self.seconds)
        return await super().complete(model_id, messages, params, sample_index)


def _complete_while_the_loop_is_held(client, model) -> None:
    """One call, while this process holds its own event loop from 0.01 to 0.31 s (a fit holding the GIL)."""
    async def call_while_the_loop_is_held():
        async def hold():
            await asyncio.sleep(0.01)
            time.sleep(0.3)
        return (await asyncio.gather(client.complete(model, MSG), hold()))[0]

    asyncio.run(call_while_the_loop_is_held())


def test_an_answer_that_arrived_while_the_loop_was_busy_is_not_hedged():
    """The provider answers at 0.15 s, past the 0.1-s hedge point, but the process itself held its event
    loop from 0.01 to 0.31 s (a fit holding the GIL, say): the answer is read before a hedge is paid."""
    model = ModelSpec(id="fake/m", timeout_s=5, hedge_after_s=0.1)
    backend = _AnswersAt(0.15)
    client = LLMClient(backend)

    _complete_while_the_loop_is_held(client, model)
    assert sum(client.stats.hedges.values()) == 0 and backend.calls == 1


def test_an_answer_that_arrived_while_the_loop_was_busy_does_not_time_out():
    """The provider answers at 0.05 s, inside the 0.1-s timeout, but the process held its event loop from
    0.01 to 0.31 s: the watcher wakes past the timeout, and reads the waiting answer instead of
    calling it timed out and paying the request again."""
    model = ModelSpec(id="fake/m", timeout_s=0.1, hedge=False)
    backend = _AnswersAt(0.05)
    client = LLMClient(backend, backoff_base_s=0.0)

    _complete_while_the_loop_is_held(client, model)
    assert sum(client.stats.timeouts.values()) == 0 and backend.calls == 1
