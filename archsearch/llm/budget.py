"""A hard spending cap checked before each call starts, so concurrency cannot overshoot it."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import BudgetBusy, BudgetExhausted


@dataclass
class Budget:
    usd: float | None = None
    calls: int | None = None
    spent_usd: float = 0.0
    reserved_usd: float = 0.0
    started_calls: int = 0

    def reserve(self, estimate_usd: float | None) -> float:
        """Claim room for one call or raise BudgetExhausted. Returns the amount held."""
        if self.calls is not None and self.started_calls + 1 > self.calls:
            raise BudgetExhausted(f"call budget of {self.calls} calls reached")
        held = estimate_usd or 0.0
        if self.usd is not None:
            if estimate_usd is None:
                raise BudgetExhausted("cannot bound the cost of a call to a model without a known price")
            if self.spent_usd + self.reserved_usd + held > self.usd + 1e-12:
                if self.reserved_usd > 0 and self.spent_usd + held <= self.usd + 1e-12:
                    raise BudgetBusy("waiting for calls in flight to settle")
                raise BudgetExhausted(
                    f"dollar budget of ${self.usd:.4f} reached (spent ${self.spent_usd:.4f}, "
                    f"${self.reserved_usd:.4f} in flight, next call up to ${held:.4f})"
                )
        self.started_calls += 1
        self.reserved_usd += held
        return held

    def settle(self, held: float, actual_usd: float) -> None:
        self.reserved_usd -= held
        self.spent_usd += actual_usd
