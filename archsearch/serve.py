"""``archsearch serve SPEC``: a frozen pipeline behind the OpenAI chat-completions API.

Any OpenAI client (the official ``openai`` package, litellm, curl) talks to it: the model name is
the spec's name, the last user message is the question -- or, when it is a JSON object, the task's
fields. ``usage`` sums the tokens of every call the pipeline made; the question's dollar cost and
call count come back in the ``x-archsearch-cost-usd`` and ``x-archsearch-calls`` headers. Beyond
``max_concurrent`` questions in flight it answers 429 with Retry-After. aiohttp serves it: the
pipeline's own HTTP client already runs on aiohttp, so server and calls share one event loop.

Part of the deployment path: it imports neither optuna, jax nor numpyro.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

from aiohttp import web

from .errors import ArchsearchError
from .llm import LLMClient
from .pipeline import Pipeline, Result
from .spec import PipelineSpec

PIPELINE = web.AppKey("pipeline", Pipeline)
STATE = web.AppKey("state", dict)


def _error(status: int, message: str, kind: str = "invalid_request_error", code: str | None = None,
           headers: dict | None = None) -> web.Response:
    return web.json_response({"error": {"message": message, "type": kind, "param": None, "code": code}},
                             status=status, headers=headers)


def question_of(pipe: Pipeline, messages: Any) -> str | dict[str, Any]:
    """The last user message's text; a JSON object there is the task's fields."""
    if not isinstance(messages, list) or not messages:
        raise ValueError("'messages' must be a non-empty list")
    users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    if not users:
        raise ValueError("no message with role 'user'")
    content = users[-1].get("content")
    if isinstance(content, list):  # content parts: keep the text ones
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    if not isinstance(content, str):
        raise ValueError("the last user message has no text content")
    stripped = content.strip()
    if stripped.startswith("{"):
        try:
            fields = json.loads(stripped)
        except json.JSONDecodeError:
            fields = None
        if isinstance(fields, dict) and set(pipe.fields) <= set(fields):
            return fields
    return content


def _usage(result: Result) -> dict[str, int]:
    tokens_in = sum(t.tokens_in for t in result.trace.layers)
    tokens_out = sum(t.tokens_out for t in result.trace.layers)
    return {"prompt_tokens": tokens_in, "completion_tokens": tokens_out, "total_tokens": tokens_in + tokens_out}


def _headers(result: Result) -> dict[str, str]:
    t = result.trace
    return {"x-archsearch-cost-usd": f"{t.cost_usd:.8f}", "x-archsearch-calls": str(t.calls + t.cache_hits),
            "x-archsearch-pipeline-seconds": f"{t.seconds:.6f}",
            "x-archsearch-paid-calls": str(t.calls), "x-archsearch-abstained": "1" if result.answer is None else "0"}


async def chat_completions(request: web.Request) -> web.StreamResponse:
    pipe, state = request.app[PIPELINE], request.app[STATE]
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return _error(400, "the request body is not JSON")
    if not isinstance(body, dict):
        return _error(400, "the request body must be a JSON object")
    if body.get("model") != pipe.spec.name:
        return _error(404, f"model {body.get('model')!r} does not exist here (this server runs {pipe.spec.name!r})",
                      code="model_not_found")
    try:
        question = pipe.question(question_of(pipe, body.get("messages")))
    except (ValueError, ArchsearchError) as exc:
        return _error(400, str(exc))
    if state["in_flight"] >= state["max_concurrent"]:
        return _error(429, f"more than {state['max_concurrent']} questions in flight; retry shortly",
                      kind="rate_limit_error", headers={"Retry-After": str(state["retry_after_s"])})
    state["in_flight"] += 1
    try:
        result = await pipe.acall(question)
    except ArchsearchError as exc:
        return _error(502, f"the pipeline failed: {exc}", kind="api_error")
    finally:
        state["in_flight"] -= 1
    completion_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
    text = result.answer or ""
    if body.get("stream"):
        return await _stream(request, completion_id, created, pipe.spec.name, text, result,
                             bool((body.get("stream_options") or {}).get("include_usage")))
    return web.json_response({
        "id": completion_id, "object": "chat.completion", "created": created, "model": pipe.spec.name,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop",
                     "logprobs": None}],
        "usage": _usage(result),
    }, headers=_headers(result))


async def _stream(request: web.Request, completion_id: str, created: int, model: str, text: str, result: Result,
                  include_usage: bool) -> web.StreamResponse:
    """Server-sent events: the answer arrives whole (the pipeline decides before it speaks), in the
    chunk shape OpenAI clients parse, then ``data: [DONE]``."""
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                                           **_headers(result)})
    await response.prepare(request)

    def chunk(delta: dict, finish: str | None, usage: dict | None = None) -> bytes:
        data = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}] if delta is not None
                else []}
        if usage is not None:
            data["usage"] = usage
        return f"data: {json.dumps(data)}\n\n".encode()

    await response.write(chunk({"role": "assistant", "content": text}, None))
    await response.write(chunk({}, "stop"))
    if include_usage:
        await response.write(chunk(None, None, _usage(result)))
    await response.write(b"data: [DONE]\n\n")
    await response.write_eof()
    return response


async def models(request: web.Request) -> web.Response:
    pipe = request.app[PIPELINE]
    return web.json_response({"object": "list", "data": [{"id": pipe.spec.name, "object": "model",
                                                          "created": request.app[STATE]["started"],
                                                          "owned_by": "archsearch"}]})


async def healthz(request: web.Request) -> web.Response:
    state = request.app[STATE]
    return web.json_response({"status": "ok", "model": request.app[PIPELINE].spec.name, "worker": os.getpid(),
                              "in_flight": state["in_flight"], "served": state["served"]})


@web.middleware
async def _count(request: web.Request, handler):
    response = await handler(request)
    if request.path.endswith("/chat/completions") and response.status == 200:
        request.app[STATE]["served"] += 1
    return response


def make_app(pipe: Pipeline, max_concurrent: int = 64, retry_after_s: int = 1) -> web.Application:
    app = web.Application(middlewares=[_count], client_max_size=8 * 1024 * 1024)
    app[PIPELINE] = pipe
    app[STATE] = {"in_flight": 0, "served": 0, "max_concurrent": max_concurrent, "retry_after_s": retry_after_s,
                  "started": int(time.time())}
    for prefix in ("/v1", ""):
        app.router.add_post(f"{prefix}/chat/completions", chat_completions)
        app.router.add_get(f"{prefix}/models", models)
    app.router.add_get("/healthz", healthz)

    async def release(app: web.Application) -> None:  # graceful shutdown: close the model client's sessions
        await pipe.client.release_loop()

    app.on_cleanup.append(release)
    return app


def serve(spec: PipelineSpec, make_client: Callable[[], LLMClient], host: str = "127.0.0.1", port: int = 8000,
          max_concurrent: int = 64, shutdown_timeout_s: float = 30.0, workers: int = 1) -> None:
    """Run until SIGINT/SIGTERM; questions in flight get ``shutdown_timeout_s`` to finish.

    ``workers > 1`` forks that many processes listening on one port (SO_REUSEPORT: the kernel spreads
    connections over them), each with its own client from ``make_client`` -- one Python event loop
    tops out near one core. ``max_concurrent`` applies per worker."""
    if workers < 1:
        raise ArchsearchError(f"`workers >= 1` must hold, but got {workers}")
    if workers > 1:
        _check_port(host, port)  # one error line from here rather than one per worker
    print(f"archsearch serve: {spec.name} on http://{host}:{port}/v1 (max {max_concurrent} questions in flight"
          f"{f' per worker, {workers} workers' if workers > 1 else ''})", flush=True)
    if workers == 1:
        _run(spec, make_client, host, port, max_concurrent, shutdown_timeout_s, reuse_port=False)
        return
    context = multiprocessing.get_context("fork")  # make_client may be a closure: fork, not spawn
    args = (spec, make_client, host, port, max_concurrent, shutdown_timeout_s, True)
    children = [context.Process(target=_run_worker, args=args) for _ in range(workers)]
    stopping: list[int] = []

    def stop(signum: int, frame: Any) -> None:
        stopping.append(signum)
        for child in children:
            if child.pid is not None and child.is_alive():
                os.kill(child.pid, signal.SIGTERM)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        for child in children:
            child.start()
        while not stopping and all(child.is_alive() for child in children):
            multiprocessing.connection.wait([child.sentinel for child in children], timeout=1.0)
        told_to_stop = bool(stopping)
        stop(signal.SIGTERM, None)  # told to stop, or one worker died: stop them all
        for child in children:
            child.join(shutdown_timeout_s + 5)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    died = [child.exitcode for child in children if child.exitcode not in (0, -signal.SIGTERM)]
    if died and not told_to_stop:
        raise ArchsearchError(f"a serve worker exited with code {died[0]}; the others were stopped")


def _run(spec: PipelineSpec, make_client: Callable[[], LLMClient], host: str, port: int, max_concurrent: int,
         shutdown_timeout_s: float, reuse_port: bool) -> None:
    try:
        web.run_app(make_app(Pipeline(spec, make_client()), max_concurrent), host=host, port=port, print=None,
                    access_log=None, shutdown_timeout=shutdown_timeout_s, backlog=2048, handle_signals=True,
                    reuse_port=reuse_port, loop=asyncio.new_event_loop())
    except OSError as exc:
        raise _cannot_listen(host, port, exc) from None


def _run_worker(*args: Any) -> None:
    """A worker process: one line on stderr and exit code 2 for a known error, like the CLI."""
    for sig in (signal.SIGTERM, signal.SIGINT):  # not the parent's handlers: aiohttp installs its own
        signal.signal(sig, signal.SIG_DFL)
    try:
        _run(*args)
    except ArchsearchError as exc:
        print(f"archsearch: error: {exc}", file=sys.stderr, flush=True)
        sys.exit(2)


def _check_port(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise _cannot_listen(host, port, exc) from None


def _cannot_listen(host: str, port: int, exc: OSError) -> ArchsearchError:
    return ArchsearchError(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
