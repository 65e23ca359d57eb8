"""The Redis state store: replicas share limits; one Lua script call per admission.

``admit`` and ``settle`` each run one script (EVALSHA; redis-py reloads it once on
NOSCRIPT), so an admission costs one round trip and is atomic across replicas. The pool
is a ``BlockingConnectionPool`` (waits for a free connection instead of failing).

When Redis cannot be reached every call raises ``StoreUnavailable`` (the limits guard
then fails open or closed, as the policy says); for ``down_retry_s`` after a failure
calls fail at once instead of waiting on the network again, then the next call tries
Redis and, if it answers, the store is up again by itself. Transitions are logged once
and counted in ``health``.
"""

from __future__ import annotations

import logging
import time
from importlib import resources
from typing import Any

from redis import exceptions as rexc
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from proxy.state import keys
from proxy.state.store import (
    KINDS,
    Admission,
    Health,
    Periods,
    Reservation,
    Spend,
    StoreUnavailable,
    Subject,
    Window,
    tightest,
)

log = logging.getLogger("guardrail.state")

_UNREACHABLE = (rexc.ConnectionError, rexc.TimeoutError, OSError)
DOWN_AFTER_TIMEOUTS = 3  # consecutive timeouts before calls fail fast


def _script(name: str) -> str:
    return resources.files("proxy.state").joinpath(name).read_text(encoding="utf-8")


def script_args(res: Reservation, tokens: int, nano_usd: int) -> tuple[list[str], list[Any]]:
    """KEYS and ARGV shared by admit.lua and settle.lua."""
    p = res.periods
    args: list[Any] = [
        res.id,
        int(tokens),
        int(nano_usd),
        int(res.lease_s * 1000),
        int(p.day_reset_s * 1000),
        int(p.month_reset_s * 1000),
        keys.DAY_TTL_S,
        keys.MONTH_TTL_S,
        keys.RESERVATION_TTL_S,
        len(res.subjects),
    ]
    for s in res.subjects:
        args.extend(-1 if v is None else int(v) for v in s.quota.values())
    assert len(args) == 10 + len(KINDS) * len(res.subjects)
    return keys.reservation_keys(res), args


def parse_admission(res: Reservation, reply: list[Any]) -> Admission:
    admitted, reason, who, retry_ms = int(reply[0]), str(reply[1]), int(reply[2]), int(reply[3])
    req: list[Window] = []
    tok: list[Window] = []
    for i, s in enumerate(res.subjects):
        r_rem, r_reset, t_rem, t_reset = (int(x) for x in reply[4 + 4 * i : 8 + 4 * i])
        if s.quota.rpm is not None:
            req.append(Window(s.quota.rpm, r_rem, r_reset / 1000))
        if s.quota.tpm is not None:
            tok.append(Window(s.quota.tpm, t_rem, t_reset / 1000))
    if admitted:
        return Admission(True, requests=tightest(req), tokens=tightest(tok))
    label = res.subjects[who - 1].label if who else None
    return Admission(False, reason or None, label, retry_ms / 1000, tightest(req), tightest(tok))


class RedisStore:
    backend = "redis"

    def __init__(
        self,
        url: str,
        *,
        max_connections: int = 64,
        connect_timeout_s: float = 1.0,
        socket_timeout_s: float = 1.0,
        down_retry_s: float = 0.5,
    ) -> None:
        self.url = url
        self.pool = BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            # A saturated pool is local back-pressure, not an outage: wait (bounded by the
            # guard's timeout_ms) instead of raising, so it never triggers the fail policy.
            timeout=None,
            socket_timeout=socket_timeout_s,
            socket_connect_timeout=connect_timeout_s,
            decode_responses=True,
        )
        # One quick retry on a fresh connection (after a Redis restart the pooled ones are
        # dead). Safe: both scripts are idempotent per reservation id. Timeouts are not
        # retried, so one call waits at most one timeout (under the guard's timeout_ms).
        # Timeouts can be tuned in the URL: ?socket_timeout=2&socket_connect_timeout=1
        self.client = Redis(
            connection_pool=self.pool, retry=Retry(NoBackoff(), 1, supported_errors=(rexc.ConnectionError,))
        )
        self._admit = self.client.register_script(_script("admit.lua"))
        self._settle = self.client.register_script(_script("settle.lua"))
        self.down_retry_s = down_retry_s
        self._down_until = 0.0
        self._consecutive = 0
        self.health = Health(backend="redis")

    # ---- reachability ------------------------------------------------------------------
    async def _run(self, op: str, coro_fn: Any) -> Any:
        if time.monotonic() < self._down_until:
            self.health.fast_fails += 1
            raise StoreUnavailable(f"redis down ({op})")
        try:
            result = await coro_fn()
        except _UNREACHABLE as exc:
            self.health.failures += 1
            self._consecutive += 1
            # Refused/reset: down now. A timeout may just be a slow moment: down after a few.
            if not isinstance(exc, rexc.TimeoutError | TimeoutError) or self._consecutive >= DOWN_AFTER_TIMEOUTS:
                self._down_until = time.monotonic() + self.down_retry_s
            if self.health.up and self._down_until > time.monotonic():
                self.health.up = False
                log.warning(
                    "state store unreachable", extra={"backend": "redis", "op": op, "error": type(exc).__name__}
                )
            raise StoreUnavailable(f"redis unreachable ({op}): {type(exc).__name__}") from None
        self._consecutive = 0
        if not self.health.up:
            self.health.up = True
            self.health.recoveries += 1
            log.warning("state store reachable again", extra={"backend": "redis", "op": op})
        return result

    # ---- limits ------------------------------------------------------------------------
    async def admit(self, res: Reservation) -> Admission:
        k, a = script_args(res, res.tokens, res.nano_usd)
        reply = await self._run("admit", lambda: self._admit(keys=k, args=a))
        return parse_admission(res, reply)

    async def settle(self, res: Reservation, tokens: int, nano_usd: int) -> None:
        k, a = script_args(res, tokens, nano_usd)
        await self._run("settle", lambda: self._settle(keys=k, args=a))

    async def release(self, res: Reservation) -> None:
        await self.settle(res, 0, 0)

    async def spent(self, team: str, subject: Subject, periods: Periods) -> tuple[Spend, Spend]:
        k = keys.subject_keys(team, subject, periods.day, periods.month)[3:]
        values = await self._run("spent", lambda: self.client.mget(k))
        c = [int(v or 0) for v in values]
        return Spend(c[0], c[2]), Spend(c[1], c[3])

    # ---- generic small values ------------------------------------------------------------
    async def get(self, key: str) -> str | None:
        value = await self._run("get", lambda: self.client.get(keys.kv(key)))
        return None if value is None else str(value)

    async def set(self, key: str, value: str, ttl_s: float | None = None) -> None:
        px = int(ttl_s * 1000) if ttl_s else None
        await self._run("set", lambda: self.client.set(keys.kv(key), value, px=px))

    async def incr(self, key: str, by: int = 1, ttl_s: float | None = None) -> int:
        k = keys.counter(key)

        async def go() -> int:
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.incrby(k, by)
                if ttl_s:
                    pipe.pexpire(k, int(ttl_s * 1000), nx=True)
                out = await pipe.execute()
            return int(out[0])

        result: int = await self._run("incr", go)
        return result

    async def delete(self, key: str) -> None:
        await self._run("delete", lambda: self.client.delete(keys.kv(key), keys.counter(key)))

    async def ping(self) -> bool:
        try:
            return bool(await self._run("ping", self.client.ping))
        except StoreUnavailable:
            return False

    async def close(self) -> None:
        await self.client.aclose()
        await self.pool.disconnect()
