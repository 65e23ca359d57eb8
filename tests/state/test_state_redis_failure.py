"""Redis-only behaviour: replicas racing on one budget, Redis going away and coming back."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from proxy.devtools.redis_server import RedisServer
from proxy.state.redis_store import RedisStore
from proxy.state.store import NANO, Quota, Reservation, StoreUnavailable, Subject


def reservation(team: str, q: Quota, usd: float) -> Reservation:
    return Reservation(
        uuid.uuid4().hex, team, (Subject("key", "k", q), Subject("team", team, Quota())), 10, int(usd * NANO)
    )


async def test_state_replicas_racing_on_one_budget_never_overspend(redis_server: RedisServer) -> None:
    replicas = [
        RedisStore(redis_server.url, max_connections=8, socket_timeout_s=10, connect_timeout_s=10) for _ in range(3)
    ]
    team = "race-" + uuid.uuid4().hex[:6]
    q = Quota(usd_day=int(0.5 * NANO), concurrent=1000)
    try:
        results = await asyncio.gather(*(replicas[i % 3].admit(reservation(team, q, 0.03)) for i in range(300)))
        assert sum(a.admitted for a in results) == 16  # 16 * 0.03 = 0.48 <= 0.5 < 17 * 0.03
    finally:
        for r in replicas:
            await r.close()


async def test_state_admission_is_one_evalsha_round_trip(redis_server: RedisServer) -> None:
    store = RedisStore(redis_server.url)
    try:
        await store.admit(reservation("rt-" + uuid.uuid4().hex[:6], Quota(rpm=100), 0.0))  # script cached
        before = await store.client.info("commandstats")
        for _ in range(10):
            await store.admit(reservation("rt-" + uuid.uuid4().hex[:6], Quota(rpm=100, usd_day=NANO), 0.01))
        after = await store.client.info("commandstats")
        calls = {k: after[k]["calls"] - before.get(k, {"calls": 0})["calls"] for k in after}
        assert calls.get("cmdstat_evalsha") == 10
        assert calls.get("cmdstat_eval", 0) == 0 and calls.get("cmdstat_script|load", 0) == 0
    finally:
        await store.close()


async def test_state_redis_down_raises_unavailable_counts_and_recovers(private_redis: RedisServer) -> None:
    store = RedisStore(private_redis.url, down_retry_s=0.05)
    team = "down-" + uuid.uuid4().hex[:6]
    q = Quota(rpm=1000)
    try:
        assert (await store.admit(reservation(team, q, 0))).admitted
        private_redis.stop()
        with pytest.raises(StoreUnavailable):
            await store.admit(reservation(team, q, 0))
        assert not store.health.up and store.health.failures >= 1
        assert not await store.ping()
        private_redis.start()
        for _ in range(200):  # the store comes back by itself, no restart of the proxy
            try:
                if (await store.admit(reservation(team, q, 0))).admitted:
                    break
            except StoreUnavailable:
                await asyncio.sleep(0.02)
        else:
            pytest.fail("the store did not recover")
        assert store.health.up and store.health.recoveries == 1
        # Redis restarted empty: the scripts were reloaded on NOSCRIPT without an error.
        assert (await store.admit(reservation(team, q, 0))).admitted
    finally:
        await store.close()
