"""A deterministic fake LLM backend for tests and plugin authors.

Same request -> same answer, always: the reply is derived from a hash of (model, messages,
params). It recognises archsearch's own prompts (rank, verify, critique, test writing) and answers
them in the expected format, so every layer kind can run offline, in milliseconds.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Callable
from typing import Any

from ..llm.types import Completion, Messages

AnswerFn = Callable[[str, Messages, dict[str, Any]], str | None]


class FakeLLM:
    """``FakeLLM(answers=lambda model, messages, params: ...)`` overrides replies it returns non-None for.

    ``latency_s`` makes each call sleep (to test concurrency); ``calls`` counts requests seen.
    """

    def __init__(self, answers: AnswerFn | None = None, latency_s: float = 0.0, answer_range: int = 4) -> None:
        self.answers = answers
        self.latency_s = latency_s
        self.answer_range = answer_range
        self.calls = 0

    def _hash(self, model_id: str, messages: Messages, params: dict[str, Any]) -> int:
        blob = json.dumps([model_id, messages, params], sort_keys=True).encode()
        return int.from_bytes(hashlib.sha256(blob).digest()[:8], "big")

    def reply(self, model_id: str, messages: Messages, params: dict[str, Any]) -> str:
        if self.answers is not None:
            custom = self.answers(model_id, messages, params)
            if custom is not None:
                return custom
        h = self._hash(model_id, messages, params)
        prompt = messages[-1]["content"]
        if "Rank the candidates" in prompt:
            n = max(1, sum(1 for i in range(1, 100) if f"[{i}]\n" in prompt))
            order = sorted(range(1, n + 1), key=lambda i: hashlib.sha256(f"{h}-{i}".encode()).digest())
            return " > ".join(f"[{i}]" for i in order)
        if "Verdict" in prompt:
            return "Checked the steps. Verdict: " + ("correct" if h % 3 else "incorrect")
        if "assert statements" in prompt:
            return "```python\nassert True\nassert 1 + 1 == 2\n```"
        if "strengths and weaknesses" in prompt:
            return f"Strength: clear. Weakness: step {h % 5} may be wrong."
        return f"Working it out. The answer is {h % self.answer_range}."

    async def complete(self, model_id: str, messages: Messages, params: dict[str, Any],
                       sample_index: int = 0) -> Completion:
        self.calls += 1
        await asyncio.sleep(self.latency_s)  # even 0 yields, as a real call does: identical calls overlap
        keyed = {**params, "sample_index": sample_index} if sample_index else params  # samples differ
        words = self.reply(model_id, messages, keyed).split(" ")
        text = " ".join(words[: int(params.get("max_tokens", len(words)))])  # one word = one token here
        tokens_in = sum(len(m["content"].split()) for m in messages)
        return Completion(text=text, tokens_in=tokens_in, tokens_out=len(text.split()))
