"""Your own extractor or scorer, named ``module:function``.

This is the one place where archsearch runs code a file names: the function is YOUR code, imported
(in this process, not the sandbox) the first time it is needed -- so a task or spec that names one
is only as trustworthy as that module. Everything else in tasks and specs is data.

    extractor: my_task:extract        # def extract(text: str) -> str | None
    scorer: my_task:score             # def score(answer: str, fields: dict, reference) -> float | bool
                                      # (may be async)
The module must be importable: installed, or beside the task / spec file, or on PYTHONPATH.
"""

from __future__ import annotations

import importlib
import inspect
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import PrivateAttr, field_validator

from ..errors import ArchsearchError
from ..validation import Strict

_REF = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


def add_search_path(folder: str | Path) -> None:
    """Let ``module:function`` references find modules beside a task or spec file."""
    folder = str(Path(folder).resolve())
    if folder not in sys.path:
        sys.path.append(folder)


def resolve(ref: str) -> Callable[..., Any]:
    module, _, name = ref.partition(":")
    try:
        found = getattr(importlib.import_module(module), name)
    except ImportError as exc:
        raise ArchsearchError(f"cannot import {module!r} for {ref} ({exc}); it must be installed, beside the "
                              "task or spec file, or on PYTHONPATH") from None
    except AttributeError:
        raise ArchsearchError(f"module {module!r} has no function {name!r} (from {ref})") from None
    if not callable(found):
        raise ArchsearchError(f"{ref} is not a function")
    return found


class _UserFunction(Strict):
    function: str
    _fn: Callable | None = PrivateAttr(default=None)

    @field_validator("function")
    @classmethod
    def _reference(cls, value: str) -> str:
        if not _REF.match(value):
            raise ValueError(f"expected 'module:function', but got {value!r}")
        return value

    def fn(self) -> Callable[..., Any]:
        if self._fn is None:
            self._fn = resolve(self.function)
        return self._fn


class PythonExtractor(_UserFunction):
    """``function(text) -> str | None``, your code."""

    kind: Literal["python"] = "python"

    def __call__(self, text: str) -> str | None:
        out = self.fn()(text)
        return None if out is None else str(out)


class PythonScorer(_UserFunction):
    """``function(answer, fields, reference) -> float | bool`` (sync or async), your code."""

    kind: Literal["python"] = "python"

    async def score(self, answer: str | None, record, client=None, memo: dict | None = None) -> float:
        if answer is None:
            return 0.0
        out = self.fn()(answer, dict(record.fields), record.reference)
        if inspect.isawaitable(out):
            out = await out
        return float(out)
