"""A task: records with references, how a record becomes question text, extractor and scorer."""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import Field

from ..errors import SpecError
from ..kinds import validate_kind
from ..validation import Strict, validate
from ..yamlio import read_yaml
from .extractors import EXTRACTORS
from .scorers import SCORERS


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


class _TaskFile(Strict):
    name: str
    data: str
    template: str = Field(min_length=1)
    id_field: str = "id"
    reference_field: str = "reference"
    visible_tests_field: str | None = None
    split_field: str = "split"
    extractor: dict[str, Any] | str
    scorer: dict[str, Any] | str
    cache: str | None = None
    description: str = ""
    source: str = ""
    license: str = ""


class Task:
    """Loaded from a task YAML (see ``experiments/*/task.yaml``)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        file = str(self.path)
        cfg = validate(_TaskFile, read_yaml(self.path), file)
        self.config = cfg
        self.name = cfg.name
        self.template = cfg.template
        self.extractor = validate_kind(EXTRACTORS, cfg.extractor, file, ("extractor",))
        self.scorer = validate_kind(SCORERS, cfg.scorer, file, ("scorer",))
        self.data_path = (self.path.parent / cfg.data).resolve()
        if not self.data_path.is_file():
            raise SpecError(file, "data", f"cannot read data file {str(self.data_path)!r} (no such file)")
        self.cache_url = f"sqlite:///{(self.path.parent / cfg.cache).resolve()}" if cfg.cache else None
        self.records = _read_records(self.data_path, cfg)

    def split(self, name: str | None) -> list[Record]:
        if name in (None, "all"):
            return list(self.records)
        chosen = [r for r in self.records if r.split == name]
        if not chosen:
            names = sorted({r.split for r in self.records if r.split})
            raise SpecError(str(self.path), "split", f"no records in split {name!r} (have: {', '.join(names) or 'none'})")
        return chosen

    def data_hash(self, records: list[Record] | None = None) -> str:
        digest = hashlib.sha256()
        for r in records if records is not None else self.records:
            digest.update(json.dumps([r.id, r.text, str(r.reference)], sort_keys=True).encode())
        return digest.hexdigest()[:16]

    def question(self, record: Record) -> Question:
        return Question(record.text, record.fields, record.visible_tests, record.id)


def render(template: str, fields: dict[str, Any], file: str = "template") -> str:
    try:
        return template.format(**fields)
    except KeyError as exc:
        raise SpecError(file, "template", f"field {exc.args[0]!r} is not in the record (have: {', '.join(fields)})") from None
    except (ValueError, IndexError) as exc:
        raise SpecError(file, "template", f"bad template: {exc}") from None


def _read_records(path: Path, cfg: _TaskFile) -> list[Record]:
    file = str(path)
    try:
        if path.suffix == ".csv":
            with path.open(newline="", encoding="utf-8") as fh:
                rows = list(csv.DictReader(fh))
        else:
            rows = []
            with path.open(encoding="utf-8") as fh:
                for lineno, line in enumerate(fh, 1):
                    if not line.strip():
                        continue
                    try:
                        row = json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise SpecError(file, f"line {lineno}", f"invalid JSON: {exc.msg}") from None
                    if not isinstance(row, dict):
                        raise SpecError(file, f"line {lineno}", "expected a JSON object per line")
                    rows.append(row)
    except OSError as exc:
        raise SpecError(file, "", f"cannot read data ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise SpecError(file, "", "expected UTF-8 text") from None
    records, seen = [], set()
    for i, row in enumerate(rows):
        where = f"record {i + 1}"
        for key in (cfg.id_field, cfg.reference_field):
            if key not in row:
                raise SpecError(file, where, f"missing field {key!r}")
        rid = str(row[cfg.id_field])
        if rid in seen:
            raise SpecError(file, where, f"duplicate id {rid!r}")
        seen.add(rid)
        records.append(Record(
            id=rid, fields=row, reference=row[cfg.reference_field],
            text=render(cfg.template, row, f"{file} {where}"),
            visible_tests=row.get(cfg.visible_tests_field) if cfg.visible_tests_field else None,
            split=row.get(cfg.split_field),
        ))
    if not records:
        raise SpecError(file, "", "no records")
    return records
