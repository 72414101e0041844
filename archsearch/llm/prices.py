"""Dollar cost of a call: an explicit per-model price wins, local models are free, otherwise the
provider's (litellm's price map) figure."""

from __future__ import annotations

from ..spec import ModelSpec
from .types import Completion

LOCAL_PREFIX = "local/"


def cost_usd(model: ModelSpec, completion: Completion) -> float:
    if model.price is not None:
        return (completion.tokens_in * model.price.input_per_mtok
                + completion.tokens_out * model.price.output_per_mtok) / 1e6
    if model.id.startswith(LOCAL_PREFIX):
        return 0.0
    return completion.provider_cost_usd or 0.0


def worst_case_usd(model: ModelSpec, prompt_chars: int, max_tokens: int) -> float | None:
    """Upper estimate before a call, for budgets; None when the price is unknown here."""
    if model.price is None:
        return 0.0 if model.id.startswith(LOCAL_PREFIX) else None
    tokens_in = prompt_chars / 2  # generous: real tokenisers give ~4 chars per token
    return (tokens_in * model.price.input_per_mtok + max_tokens * model.price.output_per_mtok) / 1e6
