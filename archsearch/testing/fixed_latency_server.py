"""A loopback OpenAI-compatible chat endpoint that answers every request after a fixed delay.

Used to measure the runtime's own overhead (concurrency, retries, accounting) with the model's
speed held constant:  python -m archsearch.testing.fixed_latency_server --port 8011 --latency 0.05

``--raw`` answers from a bare asyncio protocol instead of aiohttp (keep-alive HTTP/1.1 with a
Content-Length body, which is what the clients we measure send): about a tenth of aiohttp's CPU per
request, so that on a machine the benchmark shares, the stand-in model takes little of the cores it
is meant to leave to the code under test.
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
        return web.Response(body=_completion(counter["n"], body.get("model", "fixed")), content_type="application/json")

    async def stats(request: web.Request) -> web.Response:
        return web.Response(text=json.dumps(counter))

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_post("/chat/completions", chat)
    app.router.add_get("/stats", stats)
    return app


def _completion(n: int, model: str) -> bytes:
    return json.dumps({
        "id": f"chatcmpl-{n}", "object": "chat.completion", "created": int(time.time()), "model": model,
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant",
                                                                      "content": f"The answer is {n % 7}."}}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 6, "total_tokens": 16},
    }).encode()


def take_message(buffer: bytes) -> tuple[bytes, dict[bytes, bytes], bytes, bytes] | None:
    """The first complete HTTP/1.1 message of ``buffer`` (Content-Length framing) as (start line,
    lower-cased headers, body, the rest), or None while it is incomplete."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return None
    start, *lines = buffer[:end].split(b"\r\n")
    headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(b":") for line in lines)}
    stop = end + 4 + int(headers.get(b"content-length", 0))
    if len(buffer) < stop:
        return None
    return start, headers, buffer[end + 4:stop], buffer[stop:]


class RawChatProtocol(asyncio.Protocol):
    """One keep-alive connection: each complete request is answered ``latency_s`` later, in order."""

    def __init__(self, latency_s: float, counter: dict[str, int]) -> None:
        self.latency_s, self.counter, self.buffer = latency_s, counter, b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (message := take_message(self.buffer)) is not None:
            _, _, body, self.buffer = message
            asyncio.get_running_loop().call_later(self.latency_s, self._answer, body)

    def _answer(self, body: bytes) -> None:
        if self.transport.is_closing():
            return
        self.counter["n"] += 1
        try:
            model = json.loads(body).get("model", "fixed")
        except ValueError:
            model = "fixed"
        payload = _completion(self.counter["n"], model)
        self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                             % (len(payload), payload))


async def serve_raw(port: int, latency_s: float) -> None:
    counter = {"n": 0}
    server = await asyncio.get_running_loop().create_server(lambda: RawChatProtocol(latency_s, counter),
                                                            "127.0.0.1", port, backlog=2048)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8011)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--raw", action="store_true", help="a bare asyncio protocol instead of aiohttp")
    args = parser.parse_args()
    if args.raw:
        asyncio.run(serve_raw(args.port, args.latency))
        return
    web.run_app(make_app(args.latency), host="127.0.0.1", port=args.port, print=None, access_log=None,
                backlog=1024)


if __name__ == "__main__":
    main()
