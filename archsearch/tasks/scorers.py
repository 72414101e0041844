"""Scorers compare an extracted answer with a record's reference. Each returns 0.0 or 1.0."""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from ..programs import check_hidden, fill
from ..sandbox import SandboxLimits
from ..validation import Strict
from .user_code import PythonScorer

if TYPE_CHECKING:
    from ..llm.client import LLMClient
    from .record import Record


def _number(text: Any) -> float | None:
    try:
        return float(str(text).replace(",", "").replace("$", "").strip())
    except ValueError:
        return None


class Exact(Strict):
    kind: Literal["exact"] = "exact"
    case_sensitive: bool = False

    async def score(self, answer: str | None, record: Record, client: LLMClient | None = None, memo: dict | None = None) -> float:
        if answer is None:
            return 0.0
        a, b = " ".join(answer.split()), " ".join(str(record.reference).split())
        if not self.case_sensitive:
            a, b = a.casefold(), b.casefold()
        return float(a == b)


class Numeric(Strict):
    kind: Literal["numeric"] = "numeric"
    abs_tol: float = Field(1e-6, ge=0)
    rel_tol: float = Field(0.0, ge=0)

    async def score(self, answer: str | None, record: Record, client: LLMClient | None = None, memo: dict | None = None) -> float:
        got, want = _number(answer), _number(record.reference)
        if got is None or want is None:
            return 0.0
        return float(math.isclose(got, want, abs_tol=self.abs_tol, rel_tol=self.rel_tol))


class Choice(Strict):
    kind: Literal["choice"] = "choice"

    async def score(self, answer: str | None, record: Record, client: LLMClient | None = None, memo: dict | None = None) -> float:
        if answer is None:
            return 0.0
        return float(answer.strip().upper()[:1] == str(record.reference).strip().upper()[:1])


class PythonTests(Strict):
    """Run ``program`` (the answer placed into the record's fields) then the reference tests.

    The reference holds test code; ``call`` is appended to invoke it, e.g. HumanEval's
    ``check({entry_point})``. All of it runs in the sandbox, never in this process.
    """

    kind: Literal["python_tests"] = "python_tests"
    program: str = "{answer}"
    call: str = ""
    timeout_s: float = Field(10.0, gt=0, le=600)
    memory_mb: int = Field(1024, ge=64)
    requires: list[str] = Field(default_factory=list, description="modules the programs import (the task's "
                                "``requires``): the sandbox must import them, else one error, not every answer wrong")

    async def score(self, answer: str | None, record: Record, client: LLMClient | None = None, memo: dict | None = None) -> float:
        if not answer:
            return 0.0
        limits = SandboxLimits(timeout_s=self.timeout_s, memory_mb=self.memory_mb)
        return float(await check_hidden(self.program, record.fields, answer, str(record.reference), self.call, limits,
                                        memo, self.requires))


class LLMJudge(Strict):
    """Ask a model whether the answer matches the reference (for free-form answers)."""

    kind: Literal["llm_judge"] = "llm_judge"
    model: str
    prompt: str = (
        "Question:\n{question}\n\nReference answer:\n{reference}\n\nCandidate answer:\n{answer}\n\n"
        "Does the candidate answer agree with the reference? Reply with exactly 'yes' or 'no'."
    )

    async def score(self, answer: str | None, record: Record, client: LLMClient | None = None, memo: dict | None = None) -> float:
        if answer is None:
            return 0.0
        if client is None:
            raise ValueError("the llm_judge scorer needs an LLM client")
        from ..llm.models import ModelSpec

        text = fill(self.prompt, **{**record.fields, "question": record.text, "reference": record.reference, "answer": answer})
        result = await client.complete(ModelSpec(id=self.model), [{"role": "user", "content": text}],
                                       temperature=0.0, max_tokens=8, sample_index=0)
        return float(bool(re.match(r"\s*yes", result.text, re.IGNORECASE)))


SCORERS = {cls.model_fields["kind"].default: cls for cls in (Exact, Numeric, Choice, PythonTests, LLMJudge, PythonScorer)}
