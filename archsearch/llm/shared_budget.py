"""A budget shared by every worker of a study, kept in the cache database.

Each reservation is one conditional UPDATE (``... WHERE spent + reserved + x <= cap``), atomic in
SQLite and PostgreSQL alike, so workers on several machines can never jointly start a call that
would take the study past its cap. A worker killed mid-call leaves its reservation held: the
budget errs on the side of spending less, never more.
"""

from __future__ import annotations

from sqlalchemy import Column, Float, Integer, MetaData, String, Table, select, text
from sqlalchemy.engine import Engine

from ..errors import BudgetBusy, BudgetExhausted
from .cache import create_tables

_metadata = MetaData()
budget_table = Table(
    "archsearch_budget", _metadata,
    Column("name", String(200), primary_key=True),
    Column("cap_usd", Float, nullable=True),
    Column("cap_calls", Integer, nullable=True),
    Column("spent_usd", Float, nullable=False, default=0.0),
    Column("reserved_usd", Float, nullable=False, default=0.0),
    Column("started_calls", Integer, nullable=False, default=0),
)

_RESERVE = text(
    "UPDATE archsearch_budget SET reserved_usd = reserved_usd + :held, started_calls = started_calls + 1 "
    "WHERE name = :name AND (cap_calls IS NULL OR started_calls + 1 <= cap_calls) "
    "AND (cap_usd IS NULL OR spent_usd + reserved_usd + :held <= cap_usd + 1e-12)"
)
_SETTLE = text("UPDATE archsearch_budget SET reserved_usd = reserved_usd - :held, spent_usd = spent_usd + :actual "
               "WHERE name = :name")


class SharedBudget:
    def __init__(self, engine: Engine, name: str, usd: float | None = None, calls: int | None = None) -> None:
        self.engine, self.name, self.usd, self.calls = engine, name, usd, calls
        create_tables(_metadata, engine)
        with engine.begin() as conn:
            exists = conn.execute(select(budget_table.c.name).where(budget_table.c.name == name)).first()
            if exists is None:
                try:
                    conn.execute(budget_table.insert().values(name=name, cap_usd=usd, cap_calls=calls, spent_usd=0.0,
                                                              reserved_usd=0.0, started_calls=0))
                except Exception:  # another worker inserted it first
                    pass
        with engine.begin() as conn:  # the latest command's caps apply to the whole study
            conn.execute(budget_table.update().where(budget_table.c.name == name).values(cap_usd=usd, cap_calls=calls))

    def _row(self):
        with self.engine.connect() as conn:
            return conn.execute(select(budget_table).where(budget_table.c.name == self.name)).one()

    @property
    def spent_usd(self) -> float:
        return float(self._row().spent_usd)

    @property
    def reserved_usd(self) -> float:
        return float(self._row().reserved_usd)

    @property
    def started_calls(self) -> int:
        return int(self._row().started_calls)

    def reserve(self, estimate_usd: float | None) -> float:
        if self.usd is not None and estimate_usd is None:
            raise BudgetExhausted("cannot bound the cost of a call to a model without a known price")
        held = estimate_usd or 0.0
        with self.engine.begin() as conn:
            if conn.execute(_RESERVE, {"held": held, "name": self.name}).rowcount == 1:
                return held
        row = self._row()
        calls_ok = row.cap_calls is None or row.started_calls + 1 <= row.cap_calls
        usd_ok = row.cap_usd is None or row.spent_usd + row.reserved_usd + held <= row.cap_usd + 1e-12
        in_flight_may_free = row.cap_usd is not None and row.reserved_usd > 1e-12 and row.spent_usd + held <= row.cap_usd + 1e-12
        if calls_ok and (usd_ok or in_flight_may_free):  # fits now, or once calls in flight settle
            raise BudgetBusy("waiting for calls in flight to settle")
        raise BudgetExhausted(f"study budget reached (cap ${row.cap_usd} / {row.cap_calls} calls; spent "
                              f"${row.spent_usd:.4f}, ${row.reserved_usd:.4f} in flight, {row.started_calls} calls started)")

    def settle(self, held: float, actual_usd: float) -> None:
        with self.engine.begin() as conn:
            conn.execute(_SETTLE, {"held": held, "actual": actual_usd, "name": self.name})
