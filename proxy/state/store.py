"""The state store protocol: one atomic admission for every limit, then settle.

A request reserves its estimated cost (tokens and USD, the latter in integer nano-USD so
sums are exact) against every limit of every subject (its key and its team) in one
atomic step: requests/min and tokens/min token buckets, concurrent-request slots and the
day/month budgets. Either everything is taken or nothing is. When the request ends,
``settle`` replaces the reservation by what was really consumed and frees the slot.

Two implementations pass the same contract tests: ``MemoryStore`` (one process) and
``RedisStore`` (replicas sharing one Redis, one Lua script per admission).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol, runtime_checkable

NANO = 1_000_000_000  # nano-USD per USD

# The order of limits inside a subject; the Lua scripts use the same order.
KINDS: tuple[str, ...] = ("rpm", "tpm", "concurrent", "tokens_day", "tokens_month", "usd_day", "usd_month")
BUDGET_KINDS = frozenset({"tokens_day", "tokens_month", "usd_day", "usd_month"})


class StoreUnavailable(Exception):
    """The backing store cannot be reached; the caller applies its fail policy."""


@dataclass(frozen=True, slots=True)
class Quota:
    """Limits for one subject; None means unlimited. USD budgets are in nano-USD."""

    rpm: int | None = None
    tpm: int | None = None
    concurrent: int | None = None
    tokens_day: int | None = None
    tokens_month: int | None = None
    usd_day: int | None = None
    usd_month: int | None = None

    def values(self) -> tuple[int | None, ...]:
        return tuple(getattr(self, k) for k in KINDS)

    @property
    def empty(self) -> bool:
        return all(v is None for v in self.values())


@dataclass(frozen=True, slots=True)
class Subject:
    scope: Literal["key", "team"]
    name: str
    quota: Quota

    @property
    def label(self) -> str:
        return f"{self.scope}:{self.name}"


@dataclass(frozen=True, slots=True)
class Periods:
    """The UTC day and month a reservation is charged to, and how long until each ends."""

    day: str
    month: str
    day_reset_s: float
    month_reset_s: float

    @classmethod
    def at(cls, now: datetime | None = None) -> Periods:
        now = now or datetime.now(UTC)
        start_day = now.replace(hour=0, minute=0, second=0, microsecond=0)
        next_day = start_day + timedelta(days=1)
        first = start_day.replace(day=1)
        next_month = (
            first.replace(year=first.year + 1, month=1) if first.month == 12 else first.replace(month=first.month + 1)
        )
        return cls(
            day=now.strftime("%Y-%m-%d"),
            month=now.strftime("%Y-%m"),
            day_reset_s=(next_day - now).total_seconds(),
            month_reset_s=(next_month - now).total_seconds(),
        )


@dataclass(frozen=True, slots=True)
class Reservation:
    """What one request asks for, against every subject it belongs to."""

    id: str
    team: str  # all keys of one reservation share the team's hash slot
    subjects: tuple[Subject, ...]
    tokens: int
    nano_usd: int
    periods: Periods = field(default_factory=Periods.at)
    lease_s: float = 600.0  # a concurrency slot not released by then is freed (crashed replica)


@dataclass(frozen=True, slots=True)
class Window:
    """One rate limit after this admission (what the x-ratelimit-* headers say)."""

    limit: int
    remaining: int
    reset_s: float


@dataclass(frozen=True, slots=True)
class Admission:
    admitted: bool
    reason: str | None = None  # the KINDS entry that refused, or "tpm_too_large"
    subject: str | None = None  # e.g. "key:dev"
    retry_after_s: float = 0.0
    requests: Window | None = None  # the tightest requests/min window across subjects
    tokens: Window | None = None  # the tightest tokens/min window

    @property
    def budget(self) -> bool:
        return self.reason in BUDGET_KINDS


@dataclass(frozen=True, slots=True)
class Spend:
    tokens: int
    nano_usd: int


@dataclass(slots=True)
class Health:
    """Reachability of the store, and what the limits guard did about it (counted)."""

    backend: str
    up: bool = True
    failures: int = 0  # calls that could not reach the store
    fast_fails: int = 0  # calls refused at once while the store was known down
    recoveries: int = 0  # down → up transitions
    fail_open: int = 0  # requests admitted without limits because the store was down
    fail_closed: int = 0  # requests refused because the store was down
    settle_failures: int = 0  # settlements lost because the store was down


@runtime_checkable
class StateStore(Protocol):
    """Limits plus a few small generic operations other features share."""

    backend: str
    health: Health

    async def admit(self, res: Reservation) -> Admission:
        """Atomically check and take ``res`` against every limit, or take nothing."""
        ...

    async def settle(self, res: Reservation, tokens: int, nano_usd: int) -> None:
        """Replace the reservation by what was consumed; frees the concurrency slot. Call once."""
        ...

    async def release(self, res: Reservation) -> None:
        """Nothing was consumed: give the whole reservation back and free the slot."""
        ...

    async def spent(self, team: str, subject: Subject, periods: Periods) -> tuple[Spend, Spend]:
        """(day, month) spend of one subject, reservations in flight included."""
        ...

    async def get(self, key: str) -> str | None: ...

    async def set(self, key: str, value: str, ttl_s: float | None = None) -> None: ...

    async def incr(self, key: str, by: int = 1, ttl_s: float | None = None) -> int: ...

    async def delete(self, key: str) -> None: ...

    async def ping(self) -> bool: ...

    async def close(self) -> None: ...


async def get_json(store: StateStore, key: str) -> Any:
    raw = await store.get(key)
    return None if raw is None else json.loads(raw)


async def set_json(store: StateStore, key: str, value: Any, ttl_s: float | None = None) -> None:
    await store.set(key, json.dumps(value, separators=(",", ":")), ttl_s)


def tightest(windows: list[Window]) -> Window | None:
    """The window with the fewest remaining requests/tokens (what a client must respect)."""
    return min(windows, key=lambda w: (w.remaining, -w.reset_s)) if windows else None
