"""Errors archsearch raises on purpose. Each renders as one line a user can act on."""

from __future__ import annotations

from collections.abc import Sequence


class ArchsearchError(Exception):
    """Base of every error archsearch raises deliberately (the CLI prints these without traceback)."""


class SpecError(ArchsearchError):
    """A user file (spec, task, space, objective, data) is malformed.

    Rendered as ``<file>: <path inside it>: <what was expected>``.
    """

    def __init__(self, file: str, path: str, problem: str) -> None:
        self.file, self.path, self.problem = str(file), path, problem
        where = f"{self.file}: {path}" if path else self.file
        super().__init__(one_line(f"{where}: {problem}"))


def redact(text: str) -> str:
    """Blank out any secret from the environment (``*_KEY``, ``*_TOKEN``, ``*_SECRET``) that a
    provider echoed into an error message, so it never reaches logs, caches or studies."""
    import os

    for name, value in os.environ.items():
        if len(value) >= 8 and name.upper().endswith(("_KEY", "_TOKEN", "_SECRET", "_PASSWORD")) and value in text:
            text = text.replace(value, f"<{name}>")
    return text


class Unscored(ArchsearchError):
    """A question could not be answered or checked -- a call failed, or the sandbox did -- which
    is reported apart from a wrong answer (and retried by a search)."""


class LLMCallError(Unscored):
    """A model call failed after every retry."""

    def __init__(self, model: str, reason: str) -> None:
        reason = redact(reason)
        self.model, self.reason = model, reason
        super().__init__(f"call to {model} failed: {reason}")


class BudgetExhausted(ArchsearchError):
    """Starting another call would take spend past the budget."""


class BudgetBusy(BudgetExhausted):
    """The call would fit once calls in flight settle (their reservations are worst cases): wait."""


def one_line(text: str) -> str:
    """Control characters (from user data echoed back) must not break the one-line promise."""
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def format_path(loc: Sequence[str | int]) -> str:
    """``("layers", 2, "params", "keep")`` -> ``"layers[2].params.keep"``; odd keys are quoted."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not (str(part).replace("_", "").replace("-", "").isalnum()):
            out += f"[{str(part)!r}]"
        else:
            out += f".{part}" if out else str(part)
    return out


class SandboxUnavailable(ArchsearchError):
    """The code sandbox cannot run a known-good program here: every answer would score as wrong."""

    def __init__(self, status: str, detail: str, requires=()) -> None:
        if requires:
            super().__init__(one_line(f"requires: {', '.join(requires)}: the code sandbox cannot import them with "
                                      f"{_interpreter()} ({detail}); every answer needing them would score as wrong, "
                                      "so nothing was scored -- install them for that interpreter"))
            return
        super().__init__(one_line(f"the code sandbox cannot run a trivial program on this machine ({status}: {detail}); "
                                  "every answer would score as wrong, so nothing was scored"))


def _interpreter() -> str:
    import sys

    return sys.executable


class SandboxFailed(Unscored):
    """The sandbox itself failed before a program started (no process, an interpreter that never
    came up in time): the program was not run, so it is neither right nor wrong."""

    def __init__(self, detail: str) -> None:
        super().__init__(one_line(f"the code sandbox failed before the program started: {detail}"))
