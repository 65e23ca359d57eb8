"""The shadow budget: a daily token / USD cap that only shadow calls draw on.

Reserve before the call (an estimate), settle after it (the real usage), so concurrent
shadow calls cannot overshoot by more than one estimate each. Kept in-process, per UTC
day; callers' budgets (the limits guard) never see shadow traffic.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from proxy.shadow.config import ShadowBudget


def utc_day(now: float | None = None) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(time.time() if now is None else now))


@dataclass(slots=True)
class Spent:
    day: str
    tokens: int = 0
    usd: float = 0.0


class BudgetBook:
    def __init__(self) -> None:
        self.spent = Spent(utc_day())

    def _today(self) -> Spent:
        day = utc_day()
        if self.spent.day != day:
            self.spent = Spent(day)
        return self.spent

    def reserve(self, cap: ShadowBudget, tokens: int, usd: float) -> bool:
        """Take ``tokens``/``usd`` from today's shadow budget; False (nothing taken) if it would overshoot."""
        s = self._today()
        if s.tokens + tokens > cap.tokens_per_day:
            return False
        if cap.usd_per_day is not None and s.usd + usd > cap.usd_per_day:
            return False
        s.tokens += tokens
        s.usd += usd
        return True

    def settle(self, reserved_tokens: int, reserved_usd: float, tokens: int, usd: float) -> None:
        """Replace a reservation by what the call really used."""
        s = self._today()
        s.tokens = max(0, s.tokens - reserved_tokens + tokens)
        s.usd = max(0.0, s.usd - reserved_usd + usd)
