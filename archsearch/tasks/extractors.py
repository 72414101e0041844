"""Answer extractors: pull the part of a model's text that the scorer compares."""

from __future__ import annotations

import re
from typing import Literal

from ..validation import Strict
from .user_code import PythonExtractor

_NUMBER = re.compile(r"-?\$?\d[\d,]*(?:\.\d+)?|-?\.\d+")
_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)


class LastNumber(Strict):
    """The last number in the text (commas and $ dropped). GSM8K style."""

    kind: Literal["last_number"] = "last_number"

    def __call__(self, text: str) -> str | None:
        found = _NUMBER.findall(text)
        if not found:
            return None
        value = found[-1].replace(",", "").replace("$", "")
        if "." in value:
            value = value.rstrip("0").rstrip(".") or "0"
        return value


class Boxed(Strict):
    """The content of the last ``\\boxed{...}`` (nested braces allowed)."""

    kind: Literal["boxed"] = "boxed"

    def __call__(self, text: str) -> str | None:
        start = text.rfind("\\boxed{")
        if start < 0:
            return None
        depth, i = 0, start + len("\\boxed{") - 1
        for j in range(i, len(text)):
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            if depth == 0:
                return text[i + 1 : j].strip()
        return None


class ChoiceLetter(Strict):
    """The last standalone choice letter, e.g. ``(B)`` or ``Answer: C``."""

    kind: Literal["choice"] = "choice"
    choices: str = "ABCD"

    def __call__(self, text: str) -> str | None:
        letters = re.escape(self.choices)
        found = re.findall(rf"(?<![A-Za-z])([{letters}])(?![A-Za-z])", text)
        return found[-1] if found else None


class FencedCode(Strict):
    """The longest fenced code block (``language`` preferred); the whole text if there is none."""

    kind: Literal["code"] = "code"
    language: str = "python"

    def __call__(self, text: str) -> str | None:
        blocks = _FENCE.findall(text)
        if not blocks:
            return text.strip() or None
        preferred = [body for lang, body in blocks if lang.lower() == self.language] or [
            body for _, body in blocks
        ]
        return max(preferred, key=len).rstrip() + "\n"


class Regex(Strict):
    """The given group of the last match of ``pattern``."""

    kind: Literal["regex"] = "regex"
    pattern: str
    group: int = 1

    def __call__(self, text: str) -> str | None:
        matches = list(re.finditer(self.pattern, text, re.DOTALL))
        if not matches:
            return None
        try:
            return matches[-1].group(self.group).strip()
        except IndexError:
            return None


class WholeText(Strict):
    """The whole answer, stripped."""

    kind: Literal["text"] = "text"

    def __call__(self, text: str) -> str | None:
        return text.strip() or None


EXTRACTORS = {cls.model_fields["kind"].default: cls
              for cls in (LastNumber, Boxed, ChoiceLetter, FencedCode, Regex, WholeText, PythonExtractor)}
