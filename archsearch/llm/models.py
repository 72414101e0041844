"""What a model entry says: its litellm id, call params, price, transport and timeout.

Secrets are referenced, never written: a credential in ``params`` (``api_key``, ``*_token``,
``*_secret``, ...) must be litellm's ``os.environ/NAME`` reference. It is resolved when the call is
made and left out of cache keys and cache rows, so a spec, a study or a cache never holds a key,
and rotating a key keeps the cache.
"""

from __future__ import annotations

import os
from typing import Any, Literal

from pydantic import Field, field_validator

from ..errors import ArchsearchError
from ..validation import Strict

ENV_PREFIX = "os.environ/"
_SECRET_SUFFIXES = ("key", "token", "secret", "password", "credentials")


def is_secret_param(name: str) -> bool:
    """A credential by its name (``max_tokens`` is not one: it ends in "tokens")."""
    return name.lower().replace("-", "_").endswith(_SECRET_SUFFIXES)


def looks_like_a_key(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(("sk-", "sk_", "hf_", "gsk_", "xai-", "AIza"))


class Price(Strict):
    """Dollars per million tokens; overrides litellm's price map for this model."""

    input_per_mtok: float = Field(ge=0, le=1e6)
    output_per_mtok: float = Field(ge=0, le=1e6)


class ModelSpec(Strict):
    id: str = Field(min_length=1, description="litellm model id, e.g. openai/gpt-4o-mini or local/qwen2.5-coder-0.5b")
    params: dict[str, Any] = Field(default_factory=dict, description="extra call params (api_base, ...)")
    price: Price | None = None
    transport: Literal["litellm", "http"] = Field(
        "litellm", description="'http' posts straight to an OpenAI-compatible params.api_base, skipping litellm")
    timeout_s: float | None = Field(None, gt=0, le=3600, description="per-call timeout (default: the objective's); "
                                    "once 20 calls are seen, 3x their p99 within [2 s, this]")
    hedge: bool = Field(True, description="send one identical request when a call runs past the model's usual "
                                          "latency (its p95), first answer wins; a few percent of calls at most")
    hedge_after_s: float | None = Field(None, gt=0, le=3600, description="hedge after this many seconds instead of the p95")

    @field_validator("params")
    @classmethod
    def _secrets_by_reference(cls, params: dict[str, Any]) -> dict[str, Any]:
        for name, value in params.items():
            if (is_secret_param(name) or looks_like_a_key(value)) and not (
                    isinstance(value, str) and value.startswith(ENV_PREFIX) and len(value) > len(ENV_PREFIX)):
                raise ValueError(f"params.{name}: a literal secret is refused; reference it instead, "
                                 f"e.g. {name}: {ENV_PREFIX}MY_API_KEY (read from the environment at call time)")
        return params

    def public_params(self) -> dict[str, Any]:
        """The params that identify a call: everything but credentials."""
        return {k: v for k, v in self.params.items() if not is_secret_param(k)}

    def call_params(self) -> dict[str, Any]:
        """The params to send, references resolved (only ever passed to the backend)."""
        out = {}
        for name, value in self.params.items():
            if isinstance(value, str) and value.startswith(ENV_PREFIX):
                var = value[len(ENV_PREFIX):]
                if var not in os.environ:
                    raise ArchsearchError(f"model {self.id}: params.{name} references environment variable {var}, "
                                          "which is not set")
                value = os.environ[var]
            out[name] = value
        return out
