"""Plain data passed between the client, its backends and the techniques."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

Messages = list[dict[str, str]]


@dataclass(frozen=True)
class Completion:
    """What a backend returns for one call."""

    text: str
    tokens_in: int
    tokens_out: int
    provider_cost_usd: float | None = None


@dataclass(frozen=True)
class CallResult:
    """What the client returns: the completion plus accounting. ``cached`` calls cost nothing now;
    ``cost_usd`` and ``latency_s`` are still what the original call cost, for estimates."""

    text: str
    tokens_in: int
    tokens_out: int
    cost_usd: float
    latency_s: float
    cached: bool
    key: str
    timeouts: int = 0         # attempts of this call that ran out of time before one answered
    hedged: bool = False      # a second request was sent for it ...
    hedge_won: bool = False   # ... and answered first

    @classmethod
    def from_row(cls, row: dict[str, Any], key: str) -> CallResult:
        """A call the cache answered (``row`` as ``CallCache.get`` returns it)."""
        return cls(row["text"], row["tokens_in"], row["tokens_out"], row["cost_usd"], row["latency_s"], cached=True, key=key)


class RetryableError(Exception):
    """A failure worth retrying (rate limit, 5xx, timeout, dropped connection)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        from ..errors import redact

        super().__init__(redact(message))
        self.retry_after = retry_after


class Backend(Protocol):
    """Anything that can answer a chat completion. litellm in production, a fake in tests."""

    async def complete(self, model_id: str, messages: Messages, params: dict[str, Any],
                       sample_index: int = 0) -> Completion:
        """``sample_index`` tells repeated samples of one request apart (a seed, where supported)."""
