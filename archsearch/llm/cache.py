"""Persistent call cache through SQLAlchemy: a SQLite file by default, PostgreSQL by URL.

One row per call, keyed by the hash of (model, messages, params, sample index), and one per
sandboxed run of a program a search has checked (see ``sandbox.RecordedRuns``). Rows are written
in one transaction each and never updated, so a crash cannot leave a half-written entry and a
concurrent writer of the same key is simply ignored (both wrote the same call).
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time
from typing import Any

from sqlalchemy import Column, Float, MetaData, String, Table, Text, bindparam, create_engine, event, select
from sqlalchemy.engine import Engine

from .models import ModelSpec

_metadata = MetaData()
calls_table = Table(
    "archsearch_llm_calls", _metadata,
    Column("key", String(64), primary_key=True),
    Column("model", String(300), nullable=False),
    Column("request", Text, nullable=False),
    Column("response", Text, nullable=False),
    Column("created", Float, nullable=False),
)


claims_table = Table(
    "archsearch_llm_claims", _metadata,
    Column("key", String(64), primary_key=True),
    Column("owner", String(100), nullable=False),
    Column("expires", Float, nullable=False),
)


sandbox_runs_table = Table(
    "archsearch_sandbox_runs", _metadata,
    Column("key", String(64), primary_key=True),
    Column("run", Text, nullable=False),
    Column("created", Float, nullable=False),
)


def call_key(model_id: str, messages: list[dict[str, str]], params: dict[str, Any], sample_index: int) -> str:
    blob = json.dumps({"model": model_id, "messages": messages, "params": params, "sample": sample_index},
                      sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def request_params(model: ModelSpec, temperature: float, max_tokens: int) -> dict[str, Any]:
    """The params that identify a call (credentials are not among them)."""
    return {**model.public_params(), "temperature": temperature, "max_tokens": max_tokens}


def request_key(model: ModelSpec, messages: list[dict[str, str]], temperature: float, max_tokens: int,
                sample_index: int) -> str:
    """THE cache key of a call: the i-th sample of a request is the same object everywhere (the
    client, the surrogate's observer and the benchmarks all use this one function)."""
    return call_key(model.id, messages, request_params(model, temperature, max_tokens), sample_index)


def sqlite_url(path: str) -> str:
    return f"sqlite:///{path}"


class CallCache:
    """Used from one thread (the event loop's); each process opens its own."""

    def __init__(self, url: str, claims: bool = False) -> None:
        self.url = url
        self.claims = claims  # several processes share this cache: claim a call before paying for it
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{id(self)}"
        self.engine: Engine = create_engine(url, future=True)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        create_tables(_metadata, self.engine)
        self._conn = None  # one long-lived connection: per-call pool checkouts cost more than the query
        self._select = select(calls_table.c.response).where(calls_table.c.key == bindparam("key"))
        self._insert = self._insert_ignore(calls_table, "key")

    def _connection(self):
        if self._conn is None or self._conn.closed or self._conn.invalidated:
            self._conn = self.engine.connect()
        return self._conn

    def get(self, key: str) -> dict[str, Any] | None:
        conn = self._connection()
        row = conn.execute(self._select, {"key": key}).first()
        conn.rollback()  # end the read transaction so other writers are never blocked by it
        return None if row is None else json.loads(row[0])

    def created(self, key: str) -> float | None:
        """When the call was recorded (the surrogate groups calls into recording sessions by it)."""
        conn = self._connection()
        row = conn.execute(select(calls_table.c.created).where(calls_table.c.key == key)).first()
        conn.rollback()
        return None if row is None else float(row[0])

    def responses(self, limit: int = 20_000) -> list[tuple[str, dict[str, Any]]]:
        """(model, response) of up to ``limit`` recorded calls: what a model typically writes and takes."""
        conn = self._connection()
        rows = conn.execute(select(calls_table.c.model, calls_table.c.response).limit(limit)).all()
        conn.rollback()
        return [(model, json.loads(response)) for model, response in rows]

    def keys(self) -> set[str]:
        """Every recorded call's key: one query, so that a reader about to look up thousands of calls
        most of which were never made (the surrogate's observer) skips a query per miss."""
        conn = self._connection()
        keys = set(conn.execute(select(calls_table.c.key)).scalars())
        conn.rollback()
        return keys

    def put(self, key: str, model_id: str, request: dict[str, Any], response: dict[str, Any]) -> None:
        values = dict(key=key, model=model_id, created=time.time(),
                      request=json.dumps(request, sort_keys=True, ensure_ascii=False),
                      response=json.dumps(response, sort_keys=True, ensure_ascii=False))
        conn = self._connection()
        with conn.begin():
            conn.execute(self._insert, values)

    def sandbox_runs(self) -> dict[str, dict[str, Any]]:
        """Every recorded sandbox run (``sandbox.RecordedRuns``): one query, read once per search."""
        conn = self._connection()
        rows = conn.execute(select(sandbox_runs_table.c.key, sandbox_runs_table.c.run)).all()
        conn.rollback()
        return {key: json.loads(run) for key, run in rows}

    def put_sandbox_run(self, key: str, run: dict[str, Any]) -> None:
        conn = self._connection()
        with conn.begin():
            conn.execute(self._insert_ignore(sandbox_runs_table, "key"),
                         dict(key=key, run=json.dumps(run, ensure_ascii=False), created=time.time()))

    def claim(self, key: str, ttl_s: float) -> bool:
        """Take the right to make call ``key`` (or find that a live claim of another worker holds it)."""
        now = time.time()
        conn = self._connection()
        with conn.begin():
            conn.execute(claims_table.delete().where((claims_table.c.key == key) & (claims_table.c.expires < now)))
            insert = self._insert_ignore(claims_table, "key").values(key=key, owner=self.owner, expires=now + ttl_s)
            won = conn.execute(insert.returning(claims_table.c.key)).first()  # rowcount is -1 on psycopg
        return won is not None

    def release(self, key: str) -> None:
        conn = self._connection()
        with conn.begin():
            conn.execute(claims_table.delete().where((claims_table.c.key == key) & (claims_table.c.owner == self.owner)))

    def __len__(self) -> int:
        from sqlalchemy import func

        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(calls_table)).scalar_one())

    def _insert_ignore(self, table: Table, key: str):
        name = self.engine.dialect.name
        if name == "sqlite":
            from sqlalchemy.dialects.sqlite import insert
        elif name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            return table.insert().prefix_with("IGNORE")
        return insert(table).on_conflict_do_nothing(index_elements=[key])

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self.engine.dispose()


def create_tables(metadata: MetaData, engine: Engine, attempts: int = 5) -> None:
    """``create_all`` that tolerates another process creating the same tables at the same moment."""
    from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

    for attempt in range(attempts):
        try:
            metadata.create_all(engine, checkfirst=True)
            return
        except (IntegrityError, ProgrammingError, OperationalError):
            if attempt == attempts - 1:
                raise
            time.sleep(0.2 * (attempt + 1))


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()
