"""Dollar cost of a call: an explicit per-model price wins, local models are free, otherwise the
provider's (litellm's price map) figure."""

from __future__ import annotations

from .models import ModelSpec
from .types import Completion

LOCAL_PREFIX = "local/"


def cost_usd(model: ModelSpec, completion: Completion) -> float:
    if model.price is not None:
        return (completion.tokens_in * model.price.input_per_mtok
                + completion.tokens_out * model.price.output_per_mtok) / 1e6
    if model.id.startswith(LOCAL_PREFIX):
        return 0.0
    return completion.provider_cost_usd or 0.0


TEMPLATE_TOKENS_PER_MESSAGE = 8    # role markers and separators a chat template adds (OpenAI: 3-4, ChatML: 5)
TEMPLATE_TOKENS_PER_CALL = 96     # a default system prompt some templates inject (Qwen: ~20 tokens), the reply priming


def prompt_token_bound(messages: list[dict[str, str]]) -> int:
    """An upper bound on a prompt's tokens: byte-level BPE tokenisers never use more tokens than
    UTF-8 bytes (digits, CJK, emoji and code included), plus what a chat template adds."""
    return (sum(len(str(m.get("content", "")).encode("utf-8")) for m in messages)
            + TEMPLATE_TOKENS_PER_MESSAGE * len(messages) + TEMPLATE_TOKENS_PER_CALL)


def worst_case_usd(model: ModelSpec, messages: list[dict[str, str]], max_tokens: int) -> float | None:
    """The most a call can cost, for budgets: the prompt's token bound and ``max_tokens`` out at the
    model's price; None when the price is unknown here."""
    if model.price is None:
        return 0.0 if model.id.startswith(LOCAL_PREFIX) else None
    return (prompt_token_bound(messages) * model.price.input_per_mtok + max_tokens * model.price.output_per_mtok) / 1e6
