"""A loopback OpenAI-compatible chat endpoint that answers every request after a fixed delay.

Used to measure the runtime's own overhead (concurrency, retries, accounting) with the model's
speed held constant:  python -m archsearch.testing.fixed_latency_server --port 8011 --latency 0.05
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

from aiohttp import web


def make_app(latency_s: float) -> web.Application:
    counter = {"n": 0}

    async def chat(request: web.Request) -> web.Response:
        body = await request.json()
        await asyncio.sleep(latency_s)
        counter["n"] += 1
        text = f"The answer is {counter['n'] % 7}."
        return web.json_response({
            "id": f"chatcmpl-{counter['n']}", "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model", "fixed"),
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 6, "total_tokens": 16},
        })

    async def stats(request: web.Request) -> web.Response:
        return web.Response(text=json.dumps(counter))

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_post("/chat/completions", chat)
    app.router.add_get("/stats", stats)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8011)
    parser.add_argument("--latency", type=float, default=0.05)
    args = parser.parse_args()
    web.run_app(make_app(args.latency), host="127.0.0.1", port=args.port, print=None, access_log=None,
                backlog=1024)


if __name__ == "__main__":
    main()
