"""A lean backend for OpenAI-compatible endpoints (vLLM, llama.cpp server, Ollama /v1, ...).

litellm costs 4-6 ms of CPU per call (measured on 2 cores, benchmarks/runtime_overhead.py); at
thousands of calls per minute that, not the model, bounds throughput. Models whose spec says
``transport: http`` skip it and are posted straight to ``{api_base}/chat/completions``. The API key
is ``params.api_key`` (an ``os.environ/NAME`` reference, resolved by the client at call time), else
the environment variable named by ``api_key_env``, else OPENAI_API_KEY; it is never stored.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

from ..errors import LLMCallError
from .types import Completion, Messages, RetryableError

_TRANSPORT_KEYS = ("api_base", "api_key_env", "api_key")


class HTTPBackend:
    def __init__(self) -> None:
        self._sessions: dict[asyncio.AbstractEventLoop, Any] = {}

    def _session(self):
        import aiohttp

        loop = asyncio.get_running_loop()
        session = self._sessions.get(loop)
        if session is None or session.closed:
            for old_loop in [lp for lp in self._sessions if lp.is_closed()]:
                del self._sessions[old_loop]
            session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
            self._sessions[loop] = session
        return session

    async def complete(self, model_id: str, messages: Messages, params: dict[str, Any],
                       sample_index: int = 0) -> Completion:
        import aiohttp

        base = params.get("api_base")
        if not base:
            raise LLMCallError(model_id, "transport 'http' needs params.api_base")
        key = params.get("api_key") or os.environ.get(params.get("api_key_env") or "OPENAI_API_KEY", "")
        body = {k: v for k, v in params.items() if k not in _TRANSPORT_KEYS}
        body.update(model=model_id.split("/", 1)[-1], messages=messages)
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        try:
            async with self._session().post(f"{base.rstrip('/')}/chat/completions", json=body, headers=headers) as r:
                raw = await r.read()
                status, retry_after = r.status, r.headers.get("Retry-After")
        except (aiohttp.ClientError, ConnectionError) as exc:
            raise RetryableError(f"connection failed: {type(exc).__name__}") from None
        if status == 429 or status >= 500:
            raise RetryableError(f"HTTP {status}", _seconds(retry_after))
        if status >= 400:
            raise LLMCallError(model_id, f"HTTP {status}: {raw[:200].decode('utf-8', 'replace')}")
        try:
            data = json.loads(raw)
            choice = data["choices"][0]
            usage = data.get("usage") or {}
        except (ValueError, KeyError, IndexError, TypeError):
            raise RetryableError("malformed response body") from None
        return Completion(text=(choice.get("message") or {}).get("content") or "",
                          tokens_in=int(usage.get("prompt_tokens") or 0),
                          tokens_out=int(usage.get("completion_tokens") or 0))

    async def release_loop(self) -> None:
        """Close the session bound to the running loop (call before that loop ends)."""
        session = self._sessions.pop(asyncio.get_running_loop(), None)
        if session is not None:
            await session.close()


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None
