"""Turn pydantic validation failures into one-line SpecErrors that name file and path."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from .errors import SpecError, format_path

M = TypeVar("M", bound=BaseModel)


class Strict(BaseModel):
    """Base for every user-facing config block: unknown keys are errors, not silently dropped."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _describe(err: dict[str, Any], model: type[BaseModel], loc: tuple) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        allowed = _allowed_keys(model, loc[:-1])
        hint = f" (expected one of: {', '.join(allowed)})" if allowed else ""
        return f"unknown key{hint}"
    if kind == "missing":
        return "required key is missing"
    got = err.get("input")
    if kind == "value_error" and isinstance(got, (dict, list)):  # our validators say what they expected
        return err["msg"].removeprefix("Value error, ")
    shown = repr(got) if not isinstance(got, (dict, list)) else type(got).__name__
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return f"{err['msg']}, but got {shown}"


def _allowed_keys(model: type[BaseModel], loc: tuple) -> list[str]:
    """Walk ``loc`` through nested models to list the keys that were allowed there."""
    current: Any = model
    for part in loc:
        if isinstance(part, int) or current is None:
            continue
        field = getattr(current, "model_fields", {}).get(part)
        if field is None:
            return []
        current = _inner_model(field.annotation)
    return list(getattr(current, "model_fields", {}))


def _inner_model(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def validate(model: type[M], data: Any, file: str, prefix: tuple = ()) -> M:
    """Validate ``data`` as ``model``; on failure raise SpecError for the first problem."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise SpecError(file, format_path(prefix), f"expected a mapping, but got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        # an unknown key first: a misspelt key usually explains the "missing" one next to it
        err = min(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and "[" in p))
        raise SpecError(file, format_path(prefix + loc), _describe(err, model, loc)) from None
    except RecursionError:
        raise SpecError(file, format_path(prefix), "nesting too deep") from None
    except (TypeError, ValueError, AttributeError) as exc:  # a validator met a shape it did not expect
        raise SpecError(file, format_path(prefix), f"invalid value ({type(exc).__name__}: {str(exc)[:80]})") from None
