"""Wrap any backend so a seeded share of attempts fails with a retryable error."""

from __future__ import annotations

import random
from typing import Any

from ..llm.types import Backend, Completion, Messages, RetryableError


class FlakyBackend:
    def __init__(self, inner: Backend, failure_rate: float, seed: int = 0) -> None:
        self.inner, self.failure_rate = inner, failure_rate
        self.rng = random.Random(seed)
        self.attempts = self.failed = 0

    async def complete(self, model_id: str, messages: Messages, params: dict[str, Any], sample_index: int = 0) -> Completion:
        self.attempts += 1
        if self.rng.random() < self.failure_rate:
            self.failed += 1
            raise RetryableError("HTTP 503: injected fault")
        return await self.inner.complete(model_id, messages, params, sample_index)
