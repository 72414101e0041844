"""Blocks written as ``{kind: name, ...params}``: look up the kind, then validate its params."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel

from .errors import SpecError, format_path
from .validation import validate

M = TypeVar("M", bound=BaseModel)


def validate_kind(options: dict[str, type[M]], data: Any, file: str, prefix: tuple) -> M:
    if isinstance(data, str):  # shorthand: a kind's name, or your own "module:function"
        data = {"kind": "python", "function": data} if ":" in data else {"kind": data}
    if not isinstance(data, dict):
        raise SpecError(file, format_path(prefix), f"expected a mapping with 'kind', but got {type(data).__name__}")
    kind = data.get("kind")
    if not isinstance(kind, str) or kind not in options:
        raise SpecError(
            file, format_path(prefix + ("kind",)),
            f"unknown kind {kind!r} (expected one of: {', '.join(sorted(options))})",
        )
    return validate(options[kind], data, file, prefix)
