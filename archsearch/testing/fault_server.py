"""A loopback OpenAI-compatible endpoint that misbehaves on a seeded schedule.

Request i (counted per server) gets the outcome ``schedule[i]`` drawn from ``weights`` with
``random.Random(seed)``: a normal answer, 429 with or without Retry-After, 500, 503, a hang past
the client's timeout, a malformed JSON body, an empty completion, or a body cut short mid-stream.
The schedule is reproducible, so tests can assert exactly what the client must have seen.

    python -m archsearch.testing.fault_server --port 8012 --seed 1 --failure-rate 0.2
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time

from aiohttp import web

STATE = web.AppKey("state", dict)
OUTCOMES = ("ok", "429_retry_after", "429", "500", "503", "hang", "malformed", "empty", "truncated")


def schedule(seed: int, n: int, failure_rate: float, kinds: tuple[str, ...] = OUTCOMES[1:]) -> list[str]:
    rng = random.Random(seed)
    return ["ok" if rng.random() >= failure_rate else rng.choice(kinds) for _ in range(n)]


def make_app(plan: list[str], hang_s: float = 30.0, retry_after_s: float = 0.05) -> web.Application:
    state = {"i": 0, "seen": []}

    def body(text: str) -> dict:
        return {"id": f"chatcmpl-{state['i']}", "object": "chat.completion", "created": int(time.time()),
                "model": "fault", "choices": [{"index": 0, "finish_reason": "stop",
                                               "message": {"role": "assistant", "content": text}}],
                "usage": {"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9}}

    async def chat(request: web.Request) -> web.StreamResponse:
        payload = await request.json()
        i = state["i"]
        state["i"] += 1
        outcome = plan[i] if i < len(plan) else "ok"
        state["seen"].append(outcome)
        question = payload["messages"][-1]["content"]
        if outcome == "ok":
            return web.json_response(body(f"The answer is {len(question) % 10}."))
        if outcome == "429_retry_after":
            return web.json_response({"error": "rate limited"}, status=429, headers={"Retry-After": str(retry_after_s)})
        if outcome == "429":
            return web.json_response({"error": "rate limited"}, status=429)
        if outcome == "401_echo":  # a careless provider that repeats the key it was sent
            return web.json_response({"error": f"invalid key {request.headers.get('Authorization', '')}"}, status=401)
        if outcome in ("500", "503"):
            return web.json_response({"error": "server error"}, status=int(outcome))
        if outcome == "hang":
            await asyncio.sleep(hang_s)
            return web.json_response(body("too late"))
        if outcome == "malformed":
            return web.Response(text='{"choices": [{"message": ', content_type="application/json")
        if outcome == "empty":
            return web.json_response(body(""))
        # truncated: promise a long body, send part of it, drop the connection
        full = json.dumps(body("The answer is 1.")).encode()
        response = web.StreamResponse(headers={"Content-Type": "application/json", "Content-Length": str(len(full) + 100)})
        await response.prepare(request)
        await response.write(full[: len(full) // 2])
        request.transport.close()
        return response

    async def stats(request: web.Request) -> web.Response:
        return web.json_response({"requests": state["i"], "seen": state["seen"]})

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_get("/stats", stats)
    app[STATE] = state
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8012)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--failure-rate", type=float, default=0.2)
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--hang", type=float, default=30.0)
    args = parser.parse_args()
    plan = schedule(args.seed, args.requests, args.failure_rate)
    web.run_app(make_app(plan, args.hang), host="127.0.0.1", port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
