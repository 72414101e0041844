"""A fake model family for search tests: it answers "What is A + B?" correctly with a fixed
per-model probability (deterministic per request), and a judge that is right with a fixed rate."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

_Q = re.compile(r"What is (\d+) \+ (\d+)\?")


def _u(*parts: Any) -> float:
    blob = json.dumps(parts, sort_keys=True).encode()
    return int.from_bytes(hashlib.sha256(blob).digest()[:8], "big") / 2**64


class NoisyArithmetic:
    """``FakeLLM(answers=NoisyArithmetic({"fake/strong": 0.7, "fake/weak": 0.3}))``."""

    def __init__(self, accuracy: dict[str, float], judge_tpr: float = 0.9, judge_fpr: float = 0.2) -> None:
        self.accuracy, self.judge_tpr, self.judge_fpr = accuracy, judge_tpr, judge_fpr

    def __call__(self, model_id: str, messages: list[dict[str, str]], params: dict[str, Any]) -> str | None:
        prompt = messages[-1]["content"]
        m = _Q.search(prompt)
        if m is None:
            return None
        truth = int(m[1]) + int(m[2])
        u = _u(model_id, messages, params)
        if "Verdict" in prompt:
            claimed = re.findall(r"-?\d+", prompt.split("Proposed answer:")[-1])
            right = bool(claimed) and int(claimed[-1]) == truth
            ok = u < (self.judge_tpr if right else self.judge_fpr)
            return "Verdict: " + ("correct" if ok else "incorrect")
        if u < self.accuracy.get(model_id, 0.5):
            return f"The answer is {truth}."
        return f"The answer is {truth + 1 + int(_u('wrong', u) * 3)}."
