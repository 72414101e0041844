"""The production backend: litellm ``acompletion`` for every provider, with local GGUF models
registered as litellm's custom provider ``local``."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from ..errors import LLMCallError
from .local import LocalModels
from .types import Completion, Messages, RetryableError

_RETRYABLE_NAMES = ("RateLimitError", "Timeout", "APIConnectionError", "InternalServerError",
                    "ServiceUnavailableError", "BadGatewayError")


def import_litellm():
    """Import litellm without letting it fetch its price map from the internet (unless asked)."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.suppress_debug_info = True
    return litellm


def make_local_handler(litellm, local: LocalModels):
    from litellm import CustomLLM, ModelResponse

    class LocalLLM(CustomLLM):
        async def acompletion(self, model, messages, *args, optional_params=None, **kwargs):  # type: ignore[override]
            name = model.split("/", 1)[1] if model.startswith("local/") else model
            raw = await local.chat(name, messages, dict(optional_params or {}))
            return ModelResponse(
                model=f"local/{name}",
                choices=[{"index": 0, "finish_reason": c.get("finish_reason", "stop"),
                          "message": {"role": "assistant", "content": c["message"].get("content") or ""}}
                         for c in raw["choices"]],
                usage=raw.get("usage"),
            )

    return LocalLLM()


class LiteLLMBackend:
    def __init__(self, local_models: LocalModels | None = None) -> None:
        self.local = local_models or LocalModels()
        self._litellm = import_litellm()
        handler = make_local_handler(self._litellm, self.local)
        providers = [p for p in self._litellm.custom_provider_map if p["provider"] != "local"]
        self._litellm.custom_provider_map = providers + [{"provider": "local", "custom_handler": handler}]

    async def complete(self, model_id: str, messages: Messages, params: dict[str, Any],
                       sample_index: int = 0) -> Completion:
        litellm = self._litellm
        if model_id.startswith("local/"):
            await asyncio.to_thread(self.local.check, model_id.split("/", 1)[1])
            params = {**params, "seed": sample_index}  # reproducible local samples
        try:
            response = await litellm.acompletion(model=model_id, messages=messages, num_retries=0, **params)
        except Exception as exc:  # classify: retry transient faults, surface the rest in one line
            name = type(exc).__name__
            status = getattr(exc, "status_code", None)
            message = str(exc).splitlines()[0][:300] if str(exc) else name
            if name in _RETRYABLE_NAMES or (isinstance(status, int) and (status == 429 or status >= 500)):
                raise RetryableError(f"{name}: {message}", _retry_after(exc)) from None
            raise LLMCallError(model_id, f"{name}: {message}") from None
        choice = response.choices[0]
        usage = getattr(response, "usage", None)
        cost = None
        if not model_id.startswith("local/"):
            try:
                cost = litellm.completion_cost(completion_response=response)
            except Exception:  # unknown price: the caller may set one per model
                cost = None
        return Completion(
            text=choice.message.content or "",
            tokens_in=int(getattr(usage, "prompt_tokens", 0) or 0),
            tokens_out=int(getattr(usage, "completion_tokens", 0) or 0),
            provider_cost_usd=cost,
        )


def _retry_after(exc: Exception) -> float | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None) or {}
    try:
        return float(headers.get("retry-after")) if headers.get("retry-after") else None
    except (TypeError, ValueError):
        return None
