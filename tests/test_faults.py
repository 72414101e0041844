"""The client against a misbehaving OpenAI-compatible server: retries, timeouts, error records."""

import asyncio

import pytest
from aiohttp import web

from archsearch.errors import LLMCallError
from archsearch.llm import LLMClient
from archsearch.spec import ModelSpec
from archsearch.testing.fault_server import STATE, make_app, schedule

MSG = [{"role": "user", "content": "hello"}]


async def _serve(plan, hang_s=5.0):
    app = make_app(plan, hang_s=hang_s)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    model = ModelSpec(id="openai/fault", transport="http", params={"api_base": f"http://127.0.0.1:{port}/v1"})
    return runner, model, app[STATE]


def _client(**kw):
    return LLMClient(backoff_base_s=0.001, backoff_max_s=0.01, timeout_s=0.3, **kw)


@pytest.mark.parametrize("fault, reason", [
    ("429_retry_after", "HTTP 429"), ("429", "HTTP 429"), ("500", "HTTP 500"), ("503", "HTTP 503"),
    ("hang", "timeout"), ("malformed", "malformed response body"), ("truncated", "connection failed"),
])
def test_each_fault_is_retried_and_recorded(fault, reason):
    async def go():
        runner, model, state = await _serve([fault, fault, "ok"])
        client = _client(max_retries=3)
        try:
            result = await client.complete(model, MSG)
        finally:
            await client.release_loop()
            await runner.cleanup()
        return result, client.stats, state

    result, stats, state = asyncio.run(go())
    assert result.text.startswith("The answer is") and result.tokens_out == 4
    assert state["seen"] == [fault, fault, "ok"]
    assert stats.retries == 2 and stats.calls == 1 and stats.failures == 0
    assert stats.errors == {reason: 2}


def test_empty_completion_is_an_answer_not_a_crash():
    async def go():
        runner, model, _ = await _serve(["empty"])
        client = _client()
        try:
            return await client.complete(model, MSG)
        finally:
            await client.release_loop()
            await runner.cleanup()

    assert asyncio.run(go()).text == ""


def test_gives_up_with_the_reason_and_counts_no_spend():
    async def go():
        runner, model, _ = await _serve(["503"] * 10)
        client = _client(max_retries=2)
        try:
            with pytest.raises(LLMCallError, match=r"HTTP 503 \(after 3 attempts\)"):
                await client.complete(model.model_copy(update={"price": {"input_per_mtok": 1, "output_per_mtok": 1}}), MSG)
        finally:
            await client.release_loop()
            await runner.cleanup()
        return client.stats

    stats = asyncio.run(go())
    assert stats.failures == 1 and stats.usd == 0.0 and stats.errors == {"HTTP 503": 3}


def test_retry_after_header_is_honoured():
    async def go():
        runner, model, _ = await _serve(["429_retry_after", "ok"])
        client = LLMClient(backoff_base_s=0.0001, backoff_max_s=0.0001)
        loop = asyncio.get_running_loop()
        start = loop.time()
        try:
            await client.complete(model, MSG)
        finally:
            await client.release_loop()
            await runner.cleanup()
        return loop.time() - start

    assert asyncio.run(go()) >= 0.05


def test_seeded_schedule_twenty_percent_faults_all_recovered():
    plan = schedule(seed=1, n=400, failure_rate=0.2, kinds=("429_retry_after", "429", "500", "503", "malformed", "truncated"))

    async def go():
        runner, model, state = await _serve(plan)
        client = _client(max_retries=8, max_concurrency=16)
        try:
            results = await asyncio.gather(*(client.complete(model, MSG, sample_index=i, temperature=1.0) for i in range(150)))
        finally:
            await client.release_loop()
            await runner.cleanup()
        return results, client.stats, state

    results, stats, state = asyncio.run(go())
    faults = sum(o != "ok" for o in state["seen"])
    assert len(results) == 150 and stats.failures == 0
    assert faults > 10 and stats.retries == faults == sum(stats.errors.values())
