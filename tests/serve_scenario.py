"""Runs in its own process (tests/test_serve.py): a loopback model, `archsearch serve` on a frozen
spec, and the official openai client and litellm talking to it. Prints what it saw as JSON."""

import asyncio
import json
import sys
from contextlib import ExitStack
from pathlib import Path

from archsearch.testing.net import serving


def main(workdir: str) -> None:
    with ExitStack() as servers:
        run(workdir, lambda app: servers.enter_context(serving(app)))


def run(workdir: str, start) -> None:
    from archsearch.llm import LLMClient
    from archsearch.pipeline import Pipeline
    from archsearch.serve import make_app
    from archsearch.spec import loads_spec
    from archsearch.testing.fixed_latency_server import make_app as model_app

    model_port = start(model_app(0.05))
    spec = loads_spec(f"""
schema_version: 1
name: arith-vote
task: {{template: "{{question}}", extractor: {{kind: last_number}}}}
models:
  m: {{id: openai/fixed, transport: http, params: {{api_base: "http://127.0.0.1:{model_port}/v1"}},
      price: {{input_per_mtok: 1.0, output_per_mtok: 2.0}}}}
layers:
  - {{kind: generate, params: {{model: m, n: 3, temperature: 0.7}}}}
  - {{kind: vote}}
""")
    pipe = Pipeline(spec, LLMClient(max_concurrency=64))
    port = start(make_app(pipe, max_concurrent=2))
    base = f"http://127.0.0.1:{port}/v1"
    seen = {}

    import openai

    client = openai.OpenAI(base_url=base, api_key="unused")
    raw = client.chat.completions.with_raw_response.create(
        model="arith-vote", messages=[{"role": "user", "content": "What is 2 + 2?"}])
    done = raw.parse()
    seen["openai"] = {"content": done.choices[0].message.content, "usage": done.usage.model_dump(),
                      "calls": raw.headers.get("x-archsearch-calls"), "cost": raw.headers.get("x-archsearch-cost-usd")}
    chunks = list(client.chat.completions.create(model="arith-vote", stream=True, stream_options={"include_usage": True},
                                                 messages=[{"role": "user", "content": "What is 3 + 3?"}]))
    seen["openai_stream"] = {"content": "".join(c.choices[0].delta.content or "" for c in chunks if c.choices),
                             "usage": next((c.usage.model_dump() for c in chunks if c.usage), None)}
    seen["models"] = [m.id for m in client.models.list().data]
    try:
        client.chat.completions.create(model="other", messages=[{"role": "user", "content": "x"}])
    except openai.NotFoundError as exc:
        seen["wrong_model"] = exc.status_code

    import litellm

    reply = litellm.completion(model="openai/arith-vote", api_base=base, api_key="unused",
                               messages=[{"role": "user", "content": "What is 4 + 4?"}])
    seen["litellm"] = {"content": reply.choices[0].message.content, "total_tokens": reply.usage.total_tokens}
    stream = litellm.completion(model="openai/arith-vote", api_base=base, api_key="unused", stream=True,
                                messages=[{"role": "user", "content": "What is 5 + 5?"}])
    seen["litellm_stream"] = "".join(c.choices[0].delta.content or "" for c in stream)

    async def burst():  # 20 at once against max_concurrent=2: some must be told to retry
        import aiohttp

        async with aiohttp.ClientSession() as s:
            async def one(i):
                async with s.post(f"{base}/chat/completions", json={"model": "arith-vote", "messages": [
                        {"role": "user", "content": f"What is {i} + 1?"}]}) as r:
                    return r.status, r.headers.get("Retry-After")
            return await asyncio.gather(*(one(i) for i in range(20)))

    statuses = asyncio.run(burst())
    seen["burst"] = sorted({s for s, _ in statuses})
    seen["retry_after"] = sorted({ra for s, ra in statuses if s == 429})
    import urllib.request

    seen["healthz"] = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz").read())
    seen["heavy_modules"] = sorted(m for m in sys.modules if m.split(".")[0] in ("optuna", "jax", "numpyro"))
    Path(workdir, "seen.json").write_text(json.dumps(seen))


if __name__ == "__main__":
    main(sys.argv[1])
