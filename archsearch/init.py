"""``archsearch init DIR --data FILE``: a user's own task in minutes. Reads the data (JSONL, CSV,
Parquet or a Hugging Face folder), finds the question and reference fields, and writes the four
files a search needs -- ``task.yaml``, ``space.yaml``, ``objective.yaml`` and ``experiment.yaml`` --
so that the commands it prints work as they are. Credentials are written only as references
(``os.environ/NAME``); it never overwrites a file."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from .errors import SpecError
from .tasks.task import read_rows
from .yamlio import dump_yaml

QUESTION_FIELDS = ("question", "prompt", "input", "query", "problem", "instruction", "text")
REFERENCE_FIELDS = ("reference", "answer", "target", "output", "label", "expected", "solution", "test")
NUMBER = re.compile(r"^\s*-?\$?\d[\d,]*(\.\d+)?\s*$")
FILES = ("task.yaml", "space.yaml", "objective.yaml", "experiment.yaml")


@dataclass
class InitRequest:
    folder: Path
    data: Path
    models: list[str]
    kind: str | None = None            # qa | code | choice (default: guessed from the references)
    question_field: str | None = None
    reference_field: str | None = None
    api_base: str | None = None
    api_key_env: str | None = None


def _pick(row: dict, wanted: str | None, names: tuple[str, ...], what: str, data: Path) -> str:
    if wanted is not None:
        if wanted not in row:
            raise SpecError(str(data), "", f"no field {wanted!r} for the {what} (fields: {', '.join(row)})")
        return wanted
    found = next((n for n in names if n in row), None)
    if found is None:
        raise SpecError(str(data), "", f"cannot tell which field is the {what} (fields: {', '.join(row)}); "
                                       f"name it with --{what}-field")
    return found


def _kind(rows: list[dict], reference: str, wanted: str | None) -> str:
    if wanted:
        return wanted
    refs = [str(r.get(reference, "")) for r in rows[:200]]
    if any("assert" in ref or "def check" in ref for ref in refs):
        return "code"
    if all(ref.strip().upper() in ("A", "B", "C", "D", "E") for ref in refs):
        return "choice"
    return "qa"


def _task(rows: list[dict], request: InitRequest, data_path: str) -> dict:
    row = rows[0]
    question = _pick(row, request.question_field, QUESTION_FIELDS, "question", request.data)
    reference = _pick(row, request.reference_field, REFERENCE_FIELDS, "reference", request.data)
    kind = _kind(rows, reference, request.kind)
    task = {"name": request.folder.resolve().name, "description": f"Made by archsearch init from {request.data.name}.",
            "data": data_path, "cache": "calls.sqlite", "template": f"{{{question}}}",
            "reference_field": reference, "id_field": "id" if "id" in row else None}
    if not any(r.get("split") for r in rows):
        task["splits"] = {"seed": 0, "search": 0.5, "select": 0.25}
    numeric = all(NUMBER.match(str(r.get(reference, ""))) for r in rows[:200])
    if kind == "code":
        entry = "entry_point" if "entry_point" in row else None
        task |= {"extractor": {"kind": "code", "language": "python"},
                 "scorer": {"kind": "python_tests", "program": f"{{{question}}}\n{{answer}}",
                            "call": "check({entry_point})" if entry else ""}}
        if "visible_tests" in row:
            task["visible_tests_field"] = "visible_tests"
    elif kind == "choice":
        task |= {"extractor": {"kind": "choice"}, "scorer": {"kind": "choice"}}
    elif numeric:
        task |= {"extractor": {"kind": "last_number"}, "scorer": {"kind": "numeric", "abs_tol": 1.0e-6}}
    else:
        task |= {"extractor": {"kind": "text"}, "scorer": {"kind": "exact"}}
    return task


def _models(request: InitRequest) -> tuple[dict, bool]:
    """(space models, every one priced): the price from litellm's map when it knows the model."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    out, priced = {}, True
    for i, model_id in enumerate(request.models):
        entry: dict = {"id": model_id}
        params = {}
        if request.api_base:
            params["api_base"] = request.api_base
        if request.api_key_env:
            params["api_key"] = f"os.environ/{request.api_key_env}"
        if params:
            entry["params"] = params
        price = _litellm_price(model_id)
        if price is not None:
            entry["price"] = price
        priced &= price is not None or model_id.startswith("local/")
        out[f"m{i + 1}"] = entry
    return out, priced


def _litellm_price(model_id: str) -> dict | None:
    if model_id.startswith("local/"):
        return None
    try:
        import litellm

        info = litellm.get_model_info(model_id)
    except Exception:  # noqa: BLE001 - litellm raises several kinds for a model it does not know
        return None
    cin, cout = info.get("input_cost_per_token"), info.get("output_cost_per_token")
    if cin is None or cout is None:
        return None
    return {"input_per_mtok": round(cin * 1e6, 6), "output_per_mtok": round(cout * 1e6, 6)}


def _space(models: dict, task: dict) -> dict:
    code = task["extractor"]["kind"] == "code"
    layers: list[dict] = [{"kind": "generate", "params": {
        "model": {"choice": list(models)}, "max_tokens": 512,
        "combo": {"choice": [{"n": 1, "temperature": 0.0}, {"n": 3, "temperature": 0.8}, {"n": 5, "temperature": 0.8}]}}}]
    if code and task.get("visible_tests_field"):
        layers.append({"kind": "test", "optional": True, "requires": "visible_tests",
                       "params": {"source": "task", "keep": {"choice": ["passing", "best"]}}})
    layers.append({"kind": "vote", "optional": True, "params": {"by": "behaviour" if code else "answer"}})
    return {"name": "sampling", "description": "Sample n answers from one of the models, then vote (made by "
                                               "archsearch init: widen it as you learn what pays off).",
            "models": models, "layers": layers}


def _objective(priced: bool) -> dict:
    cost = "usd_per_question" if priced else "calls_per_question"
    return {"name": "cloud" if priced else "default",
            "metrics": [{"name": "accuracy", "direction": "maximize"}, {"name": cost, "direction": "minimize"},
                        {"name": "latency_p50_s", "direction": "minimize"}],
            "select": {"maximize": "accuracy", "tie_break": cost},
            "budget": {"usd": 5.0, "wall_minutes": 120} if priced else {"calls": 5000, "wall_minutes": 120},
            "halving": {"first_rung": 10, "margin": 0.1}}


def init(request: InitRequest) -> list[Path]:
    folder = request.folder
    existing = [folder / name for name in FILES if (folder / name).exists()]
    if existing:
        raise SpecError(str(existing[0]), "", "exists: archsearch init never overwrites (use another folder)")
    if not request.models:
        raise SpecError("--model", "", "name at least one model (a litellm id, e.g. openai/gpt-4o-mini)")
    rows = read_rows(request.data)
    if not rows:
        raise SpecError(str(request.data), "", "no records")
    folder.mkdir(parents=True, exist_ok=True)
    data_path = os.path.relpath(request.data.resolve(), folder.resolve())
    task = _task(rows, request, data_path)
    models, priced = _models(request)
    files = {"task.yaml": task, "space.yaml": _space(models, task), "objective.yaml": _objective(priced),
             "experiment.yaml": {"task": "task.yaml", "space": "space.yaml", "objective": "objective.yaml",
                                 "trials": 20, "seed": 0, "study": task["name"]}}
    for name, body in files.items():
        (folder / name).write_text(dump_yaml({k: v for k, v in body.items() if v is not None or k == "id_field"}),
                                    encoding="utf-8")
    return [folder / name for name in files]
