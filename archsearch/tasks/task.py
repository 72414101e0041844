"""A task: records with references, how a record becomes question text, extractor and scorer."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import random
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, model_validator

from ..errors import SpecError
from ..kinds import validate_kind
from ..validation import Strict, validate
from ..yamlio import read_yaml
from .extractors import EXTRACTORS
from .record import Question, Record
from .scorers import SCORERS
from .user_code import add_search_path

DEMOS = "demos"   # the split whose records are shown as worked examples, never evaluated


class SplitRule(Strict):
    """Splits for data that has none: a seeded shuffle, cut into search / select / final."""

    seed: int = 0
    search: float = Field(0.5, gt=0, lt=1)
    select: float = Field(0.25, ge=0, lt=1)

    @model_validator(mode="after")
    def _room_for_final(self):
        if self.search + self.select >= 1:
            raise ValueError(f"`search + select < 1` must hold (the rest is final), but got {self.search + self.select:g}")
        return self

    def assign(self, records: list[Record]) -> list[Record]:
        order = list(range(len(records)))
        random.Random(self.seed).shuffle(order)
        cut1, cut2 = round(self.search * len(records)), round((self.search + self.select) * len(records))
        name = {i: "search" if k < cut1 else "select" if k < cut2 else "final" for k, i in enumerate(order)}
        return [dataclasses.replace(r, split=name[i]) for i, r in enumerate(records)]


class _TaskFile(Strict):
    name: str
    data: str
    template: str = Field(min_length=1)
    id_field: str | None = Field("id", description="null: records are numbered (row-1, row-2, ...)")
    reference_field: str = "reference"
    visible_tests_field: str | None = None
    split_field: str = "split"
    splits: SplitRule | None = Field(None, description="how to split data whose records carry no split")
    demo_answer_field: str | None = Field(None, description="a field holding a worked answer that a demonstration "
                                                             "shows (records of the demos split)")
    requires: list[Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")]] = Field(
        default_factory=list, description="modules the answers' programs import (e.g. numpy): checked once in the sandbox")
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
        add_search_path(self.path.parent)  # for "module:function" extractors and scorers beside the task
        self.extractor = validate_kind(EXTRACTORS, cfg.extractor, file, ("extractor",))
        self.scorer = validate_kind(SCORERS, cfg.scorer, file, ("scorer",))
        if cfg.requires and hasattr(self.scorer, "requires"):
            self.scorer = self.scorer.model_copy(update={"requires": list(cfg.requires)})
        self.data_path = (self.path.parent / cfg.data).resolve()
        if not self.data_path.exists():
            raise SpecError(file, "data", f"cannot read data {str(self.data_path)!r} (no such file or folder)")
        if self.data_path.is_dir() and not any((self.data_path / name).exists()
                                               for name in ("dataset_dict.json", "state.json")):
            raise SpecError(file, "data", f"{str(self.data_path)!r} is a folder but not one written by Hugging Face "
                                          "datasets' save_to_disk (expected JSONL, CSV, Parquet or such a folder)")
        self.cache_url = f"sqlite:///{(self.path.parent / cfg.cache).resolve()}" if cfg.cache else None
        self.records = _read_records(self.data_path, cfg)

    def split(self, name: str | None) -> list[Record]:
        """The records of one split; ``all`` is every split but ``demos`` (worked examples are shown,
        never scored)."""
        if name in (None, "all"):
            return [r for r in self.records if r.split != DEMOS]
        chosen = [r for r in self.records if r.split == name]
        if not chosen:
            names = sorted({r.split for r in self.records if r.split})
            raise SpecError(str(self.path), "split", f"no records in split {name!r} (have: {', '.join(names) or 'none'})")
        return chosen

    @property
    def final_split(self) -> str:
        """The split touched once, at export: ``final`` in three-split tasks, else ``test``."""
        return "final" if any(r.split == "final" for r in self.records) else "test"

    def data_hash(self, records: list[Record] | None = None) -> str:
        digest = hashlib.sha256()
        for r in records if records is not None else self.records:
            digest.update(json.dumps([r.id, r.text, str(r.reference)], sort_keys=True).encode())
        return digest.hexdigest()[:16]

    def demonstrations(self, k: int, seed: int = 0) -> list[dict[str, str]]:
        """``k`` worked examples from the demos split, by a seeded rule recorded with the pipeline: the
        split's ids sorted, shuffled with ``seed``, the first ``k`` (so the 2 shown are among the 4)."""
        if k == 0:
            return []
        pool = [r for r in self.records if r.split == DEMOS]
        where = f"demos: {k}"
        if len(pool) < k:
            raise SpecError(str(self.path), "split", f"{where} needs {k} records in split {DEMOS!r}, but it has {len(pool)}")
        field_ = self.config.demo_answer_field
        if field_ is None:
            raise SpecError(str(self.path), "demo_answer_field", f"{where} needs the field holding a demonstration's "
                                                                 "worked answer (e.g. demo_answer_field: worked)")
        order = sorted(r.id for r in pool)
        random.Random(seed).shuffle(order)
        by_id = {r.id: r for r in pool}
        picked = [by_id[i] for i in order[:k]]
        for r in picked:
            if not str(r.fields.get(field_) or "").strip():
                raise SpecError(str(self.path), f"{DEMOS} record {r.id!r}", f"field {field_!r} is empty or missing")
        return [{"question": r.text, "answer": str(r.fields[field_]), "id": r.id} for r in picked]

    def question(self, record: Record) -> Question:
        return Question(record.text, record.fields, record.visible_tests, record.id)


def render(template: str, fields: dict[str, Any], file: str = "template") -> str:
    try:
        return template.format(**fields)
    except KeyError as exc:
        raise SpecError(file, "template", f"field {exc.args[0]!r} is not in the record (have: {', '.join(fields)})") from None
    except (ValueError, IndexError) as exc:
        raise SpecError(file, "template", f"bad template: {exc}") from None


def _read_parquet(path: Path) -> list[dict]:
    try:
        import pyarrow.parquet as pq
    except ModuleNotFoundError:
        raise SpecError(str(path), "", "reading Parquet needs pyarrow (pip install pyarrow)") from None
    try:
        return pq.read_table(path).to_pylist()
    except Exception as exc:  # pyarrow raises many kinds for a bad file
        raise SpecError(str(path), "", f"not a readable Parquet file ({type(exc).__name__})") from None


def _read_hf_folder(path: Path) -> list[dict]:
    """A folder written by Hugging Face ``datasets`` (``save_to_disk``); a DatasetDict's split names
    become the records' ``split`` unless they have one."""
    try:
        import datasets
    except ModuleNotFoundError:
        raise SpecError(str(path), "", "a folder of data needs the Hugging Face datasets package "
                                       "(pip install datasets) and must be written by save_to_disk") from None
    try:
        loaded = datasets.load_from_disk(str(path))
    except (FileNotFoundError, ValueError) as exc:
        raise SpecError(str(path), "", f"not a datasets folder written by save_to_disk ({exc})") from None
    if isinstance(loaded, datasets.DatasetDict):
        return [{"split": name, **row} for name, part in loaded.items() for row in part]
    return list(loaded)


def read_rows(path: Path) -> list[dict]:
    """The rows of a data file: JSONL, CSV, Parquet or a Hugging Face ``save_to_disk`` folder."""
    file = str(path)
    try:
        if path.is_dir():
            rows = _read_hf_folder(path)
        elif path.suffix == ".parquet":
            rows = _read_parquet(path)
        elif path.suffix == ".csv":
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
    return rows


def _read_records(path: Path, cfg: _TaskFile) -> list[Record]:
    file, rows = str(path), read_rows(path)
    records, seen = [], set()
    for i, row in enumerate(rows):
        where = f"record {i + 1}"
        for key in (cfg.id_field, cfg.reference_field):
            if key is not None and key not in row:
                raise SpecError(file, where, f"missing field {key!r}")
        rid = str(row[cfg.id_field]) if cfg.id_field is not None else f"row-{i + 1}"
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
    if cfg.splits is not None and not any(r.split for r in records):
        records = cfg.splits.assign(records)
    return records
