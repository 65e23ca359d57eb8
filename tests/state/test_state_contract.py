"""The state store contract: the in-memory and the Redis store behave the same."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from proxy.devtools.redis_server import RedisServer
from proxy.state.memory import MemoryStore
from proxy.state.redis_store import RedisStore
from proxy.state.store import NANO, Quota, Reservation, StateStore, Subject


@pytest_asyncio.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[StateStore]:
    if request.param == "memory":
        s: StateStore = MemoryStore()
    else:
        server: RedisServer = request.getfixturevalue("redis_server")
        s = RedisStore(server.url, socket_timeout_s=10, connect_timeout_s=10)  # a loaded CI box is slow
    yield s
    await s.close()


def team() -> str:
    return "team-" + uuid.uuid4().hex[:8]


def res(t: str, key: Quota, team_q: Quota | None = None, tokens: int = 100, usd: float = 0.0, **kw) -> Reservation:
    subjects = (Subject("key", f"{t}-key", key), Subject("team", t, team_q or Quota()))
    return Reservation(uuid.uuid4().hex, t, subjects, tokens, int(usd * NANO), **kw)


async def test_state_admission_reports_remaining_requests_and_tokens(store: StateStore) -> None:
    t = team()
    adm = await store.admit(res(t, Quota(rpm=10, tpm=1000), tokens=300))
    assert adm.admitted and adm.reason is None
    assert adm.requests is not None and (adm.requests.limit, adm.requests.remaining) == (10, 9)
    assert adm.tokens is not None and (adm.tokens.limit, adm.tokens.remaining) == (1000, 700)
    assert adm.tokens.reset_s == pytest.approx(18.0, abs=0.5)


async def test_state_rpm_refuses_with_retry_after_and_takes_nothing(store: StateStore) -> None:
    t = team()
    q = Quota(rpm=2, tokens_day=10_000)
    first = res(t, q)
    assert (await store.admit(first)).admitted
    assert (await store.admit(res(t, q))).admitted
    refused = await store.admit(res(t, q))
    assert not refused.admitted and refused.reason == "rpm" and refused.subject == f"key:{t}-key"
    assert 0 < refused.retry_after_s <= 30.0
    day, _ = await store.spent(t, first.subjects[0], first.periods)
    assert day.tokens == 200  # the refused request reserved nothing


async def test_state_tpm_refuses_and_a_request_over_the_whole_limit_is_too_large(store: StateStore) -> None:
    t = team()
    q = Quota(tpm=1000)
    assert (await store.admit(res(t, q, tokens=800))).admitted
    refused = await store.admit(res(t, q, tokens=300))
    assert refused.reason == "tpm" and refused.retry_after_s > 0
    assert (await store.admit(res(t, q, tokens=1001))).reason == "tpm_too_large"


async def test_state_concurrency_slots_are_freed_by_settle_and_release(store: StateStore) -> None:
    t = team()
    q = Quota(concurrent=2)
    a, b = res(t, q), res(t, q)
    assert (await store.admit(a)).admitted and (await store.admit(b)).admitted
    third = res(t, q)
    refused = await store.admit(third)
    assert refused.reason == "concurrent" and refused.retry_after_s == pytest.approx(1.0)
    await store.settle(a, 50, 0)
    assert (await store.admit(third)).admitted
    await store.release(b)
    assert (await store.admit(res(t, q))).admitted


async def test_state_concurrency_slot_of_a_crashed_request_expires_with_its_lease(store: StateStore) -> None:
    t = team()
    q = Quota(concurrent=1)
    assert (await store.admit(res(t, q, lease_s=0.05))).admitted  # never settled
    for _ in range(100):
        if (await store.admit(res(t, q))).admitted:
            break
        await asyncio.sleep(0.02)
    else:
        pytest.fail("the lease never expired")


async def test_state_budgets_refuse_with_insufficient_quota_until_the_period_ends(store: StateStore) -> None:
    t = team()
    q = Quota(usd_day=int(1.0 * NANO))
    assert (await store.admit(res(t, q, usd=0.6))).admitted
    second = res(t, q, usd=0.6)
    refused = await store.admit(second)
    assert refused.reason == "usd_day" and refused.budget
    assert refused.retry_after_s == pytest.approx(second.periods.day_reset_s, abs=1.0)  # next UTC midnight
    assert (await store.admit(res(t, q, usd=0.4))).admitted  # exactly fills it


async def test_state_team_budget_is_shared_by_its_keys(store: StateStore) -> None:
    t = team()
    team_q = Quota(tokens_month=1000)
    a = Reservation("a" + uuid.uuid4().hex, t, (Subject("key", "k1", Quota()), Subject("team", t, team_q)), 600, 0)
    b = Reservation("b" + uuid.uuid4().hex, t, (Subject("key", "k2", Quota()), Subject("team", t, team_q)), 600, 0)
    assert (await store.admit(a)).admitted
    refused = await store.admit(b)
    assert refused.reason == "tokens_month" and refused.subject == f"team:{t}"


async def test_state_settle_replaces_the_reservation_by_the_real_usage(store: StateStore) -> None:
    t = team()
    q = Quota(tpm=10_000, tokens_day=1000, usd_day=NANO)
    r = res(t, q, tokens=900, usd=0.9)
    assert (await store.admit(r)).admitted
    assert (await store.admit(res(t, q, tokens=200))).reason == "tokens_day"
    await store.settle(r, 120, int(0.12 * NANO))
    day, month = await store.spent(t, r.subjects[0], r.periods)
    assert (day.tokens, day.nano_usd) == (120, int(0.12 * NANO)) and month.tokens == 120
    after = await store.admit(res(t, q, tokens=200))
    assert after.admitted and after.tokens is not None and after.tokens.remaining >= 10_000 - 120 - 200 - 1


async def test_state_settle_without_an_applied_admission_charges_the_usage(store: StateStore) -> None:
    t = team()
    r = res(t, Quota(tokens_day=1000), tokens=500)  # admission lost (timeout / store down)
    await store.settle(r, 70, 7)
    day, _ = await store.spent(t, r.subjects[1], r.periods)
    assert (day.tokens, day.nano_usd) == (70, 7)


async def test_state_concurrent_admissions_never_exceed_a_budget(store: StateStore) -> None:
    t = team()
    q = Quota(usd_day=int(1.0 * NANO))
    fits = 7  # 0.14 USD each: 7 fit in 1 USD, the 8th does not
    results = await asyncio.gather(*(store.admit(res(t, q, usd=0.14)) for _ in range(120)))
    assert sum(a.admitted for a in results) == fits
    assert {a.reason for a in results if not a.admitted} == {"usd_day"}


async def test_state_admit_and_settle_are_idempotent_per_reservation(store: StateStore) -> None:
    t = team()
    q = Quota(concurrent=5, tokens_day=1000)
    r = res(t, q, tokens=400)
    assert (await store.admit(r)).admitted
    assert (await store.admit(r)).admitted  # a retry after a lost reply takes nothing twice
    day, _ = await store.spent(t, r.subjects[0], r.periods)
    assert day.tokens == 400
    await store.settle(r, 100, 0)
    await store.settle(r, 100, 0)
    day, _ = await store.spent(t, r.subjects[0], r.periods)
    assert day.tokens == 100


async def test_state_small_values_with_ttl_and_counters(store: StateStore) -> None:
    name = uuid.uuid4().hex
    assert await store.get(name) is None
    await store.set(name, '{"a": 1}', ttl_s=30)
    assert await store.get(name) == '{"a": 1}'
    await store.set(name + "x", "short", ttl_s=0.05)
    await asyncio.sleep(0.1)
    assert await store.get(name + "x") is None
    assert await store.incr(name) == 1
    assert await store.incr(name, 5, ttl_s=30) == 6
    await store.delete(name)
    assert await store.get(name) is None and await store.incr(name) == 1
    assert await store.ping()
