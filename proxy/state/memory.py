"""The in-process state store (the default): same semantics as the Redis Lua scripts.

Every operation runs without awaiting in its critical section, so on one event loop an
admission is atomic; a lock also makes it safe from other threads. Expired entries are
swept lazily.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from proxy.state import keys
from proxy.state.store import Admission, Health, Periods, Reservation, Spend, Subject, Window, tightest

Clock = Callable[[], float]


class _Refused(Exception):
    def __init__(self, reason: str, subject: str, retry_after_s: float) -> None:
        self.reason, self.subject, self.retry_after_s = reason, subject, retry_after_s


class MemoryStore:
    backend = "memory"

    def __init__(self, clock: Clock = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}  # key → (level, at_ms)
        self._slots: dict[str, dict[str, float]] = {}  # key → {reservation id: expires_ms}
        self._values: dict[str, tuple[str, float]] = {}  # key → (value, expires_ms or inf)
        # reservation record key → (tokens, nano_usd, expires_ms); (0, 0, exp) once settled
        self._reserved: dict[str, tuple[int, int, float]] = {}
        self._settled: set[str] = set()
        self._ops = 0
        self.health = Health(backend="memory")

    # ---- limits -------------------------------------------------------------------------
    def _now_ms(self) -> float:
        return self._clock() * 1000.0

    def _level(self, key: str, limit: int, now: float) -> float:
        level, at = self._buckets.get(key, (float(limit), now))
        return min(float(limit), level + max(0.0, now - at) * limit / 60_000.0)

    def _counter(self, key: str, now: float) -> int:
        found = self._values.get(key)
        if found is None or found[1] <= now:
            return 0
        return int(found[0])

    def _add(self, key: str, delta: int, ttl_s: float, now: float) -> None:
        value = self._counter(key, now) + delta
        self._values[key] = (str(value), now + ttl_s * 1000.0)

    def _live_slots(self, key: str, now: float) -> dict[str, float]:
        slots = self._slots.setdefault(key, {})
        for rid in [r for r, exp in slots.items() if exp <= now]:
            del slots[rid]
        return slots

    def _check(self, res: Reservation, now: float) -> None:
        p = res.periods
        for s in res.subjects:
            k = keys.subject_keys(res.team, s, p.day, p.month)
            q = s.quota
            if q.rpm is not None:
                level = self._level(k[0], q.rpm, now)
                if level < 1:
                    raise _Refused("rpm", s.label, (1 - level) * 60.0 / q.rpm)
            if q.tpm is not None:
                if res.tokens > q.tpm:
                    raise _Refused("tpm_too_large", s.label, 60.0)
                level = self._level(k[1], q.tpm, now)
                if level < res.tokens:
                    raise _Refused("tpm", s.label, (res.tokens - level) * 60.0 / q.tpm)
            if q.concurrent is not None and len(self._live_slots(k[2], now)) >= q.concurrent:
                raise _Refused("concurrent", s.label, 1.0)
            budgets = (
                ("tokens_day", q.tokens_day, k[3], res.tokens, p.day_reset_s),
                ("tokens_month", q.tokens_month, k[4], res.tokens, p.month_reset_s),
                ("usd_day", q.usd_day, k[5], res.nano_usd, p.day_reset_s),
                ("usd_month", q.usd_month, k[6], res.nano_usd, p.month_reset_s),
            )
            for kind, limit, key, cost, reset in budgets:
                if limit is not None and self._counter(key, now) + cost > limit:
                    raise _Refused(kind, s.label, reset)

    def _take(self, res: Reservation, now: float) -> None:
        p = res.periods
        for s in res.subjects:
            k = keys.subject_keys(res.team, s, p.day, p.month)
            q = s.quota
            if q.rpm is not None:
                self._buckets[k[0]] = (self._level(k[0], q.rpm, now) - 1, now)
            if q.tpm is not None:
                self._buckets[k[1]] = (self._level(k[1], q.tpm, now) - res.tokens, now)
            if q.concurrent is not None:
                self._live_slots(k[2], now)[res.id] = now + res.lease_s * 1000.0
            self._add(k[3], res.tokens, keys.DAY_TTL_S, now)
            self._add(k[4], res.tokens, keys.MONTH_TTL_S, now)
            self._add(k[5], res.nano_usd, keys.DAY_TTL_S, now)
            self._add(k[6], res.nano_usd, keys.MONTH_TTL_S, now)
        rkey = keys.reservation_keys(res)[0]
        self._reserved[rkey] = (res.tokens, res.nano_usd, now + keys.RESERVATION_TTL_S * 1000.0)

    def _windows(self, res: Reservation, now: float) -> tuple[Window | None, Window | None]:
        req: list[Window] = []
        tok: list[Window] = []
        for s in res.subjects:
            k = keys.subject_keys(res.team, s, res.periods.day, res.periods.month)
            for limit, key, out in ((s.quota.rpm, k[0], req), (s.quota.tpm, k[1], tok)):
                if limit is not None:
                    level = self._level(key, limit, now)
                    out.append(Window(limit, max(0, math.floor(level)), max(0.0, (limit - level) * 60.0 / limit)))
        return tightest(req), tightest(tok)

    async def admit(self, res: Reservation) -> Admission:
        with self._lock:
            self._ops += 1
            now = self._now_ms()
            self._sweep(now)
            rkey = keys.reservation_keys(res)[0]
            if rkey in self._reserved or rkey in self._settled:  # a repeated call takes nothing twice
                req, tok = self._windows(res, now)
                return Admission(True, requests=req, tokens=tok)
            try:
                self._check(res, now)
            except _Refused as r:
                req, tok = self._windows(res, now)
                return Admission(False, r.reason, r.subject, r.retry_after_s, req, tok)
            self._take(res, now)
            req, tok = self._windows(res, now)
            return Admission(True, requests=req, tokens=tok)

    async def settle(self, res: Reservation, tokens: int, nano_usd: int) -> None:
        with self._lock:
            self._ops += 1
            now = self._now_ms()
            rkey = keys.reservation_keys(res)[0]
            if rkey in self._settled:
                return
            self._settled.add(rkey)
            held = self._reserved.pop(rkey, None)
            d_tok, d_usd = (tokens - held[0], nano_usd - held[1]) if held and held[2] > now else (tokens, nano_usd)
            p = res.periods
            for s in res.subjects:
                k = keys.subject_keys(res.team, s, p.day, p.month)
                if s.quota.tpm is not None:
                    level = self._level(k[1], s.quota.tpm, now) - d_tok
                    self._buckets[k[1]] = (min(float(s.quota.tpm), level), now)
                if s.quota.concurrent is not None:
                    self._live_slots(k[2], now).pop(res.id, None)
                self._add(k[3], d_tok, keys.DAY_TTL_S, now)
                self._add(k[4], d_tok, keys.MONTH_TTL_S, now)
                self._add(k[5], d_usd, keys.DAY_TTL_S, now)
                self._add(k[6], d_usd, keys.MONTH_TTL_S, now)

    async def release(self, res: Reservation) -> None:
        await self.settle(res, 0, 0)

    async def spent(self, team: str, subject: Subject, periods: Periods) -> tuple[Spend, Spend]:
        with self._lock:
            now = self._now_ms()
            k = keys.subject_keys(team, subject, periods.day, periods.month)
            c = [self._counter(key, now) for key in k[3:]]
            return Spend(c[0], c[2]), Spend(c[1], c[3])

    def _sweep(self, now: float) -> None:
        if self._ops % 1024:
            return
        for key in [k for k, (_, exp) in self._values.items() if exp <= now]:
            del self._values[key]
        for key in [k for k, (_, _, exp) in self._reserved.items() if exp <= now]:
            del self._reserved[key]
        if len(self._settled) > 100_000:  # ids are unique per request: old ones are never seen again
            self._settled.clear()
        for key in [k for k, (_, at) in self._buckets.items() if now - at > 120_000]:
            del self._buckets[key]

    # ---- generic small values -----------------------------------------------------------
    async def get(self, key: str) -> str | None:
        with self._lock:
            found = self._values.get(keys.kv(key))
            return found[0] if found is not None and found[1] > self._now_ms() else None

    async def set(self, key: str, value: str, ttl_s: float | None = None) -> None:
        with self._lock:
            expires = self._now_ms() + ttl_s * 1000.0 if ttl_s else math.inf
            self._values[keys.kv(key)] = (value, expires)

    async def incr(self, key: str, by: int = 1, ttl_s: float | None = None) -> int:
        with self._lock:
            now = self._now_ms()
            k = keys.counter(key)
            found = self._values.get(k)
            current = int(found[0]) if found is not None and found[1] > now else 0
            expires = found[1] if found is not None and found[1] > now else math.inf
            if ttl_s and expires == math.inf:
                expires = now + ttl_s * 1000.0
            self._values[k] = (str(current + by), expires)
            return current + by

    async def delete(self, key: str) -> None:
        with self._lock:
            self._values.pop(keys.kv(key), None)
            self._values.pop(keys.counter(key), None)

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        return None
