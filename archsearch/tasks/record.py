"""What a task is made of: a record (a question with its reference answer and split) and the
question a pipeline answers. Their own module: the task, the scorers and the techniques all use them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Record:
    id: str
    fields: dict[str, Any]
    reference: Any = None
    text: str = ""
    visible_tests: str | None = None
    split: str | None = None


@dataclass(frozen=True)
class Question:
    """What a pipeline answers: the rendered text plus the raw fields it came from."""

    text: str
    fields: dict[str, Any] = field(default_factory=dict)
    visible_tests: str | None = None
    id: str | None = None
