"""Two proxy replicas sharing one Redis share one budget, and Redis outages follow the policy."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import aiohttp
import openai
import pytest

from proxy.context import Route
from proxy.devtools.fake_upstream import Reply
from proxy.devtools.redis_server import RedisServer
from proxy.limits import tokens
from proxy.rules.loader import RuleLoadError
from proxy.rules.ruleset import build_ruleset

K1, K2 = "sk-test-k1-secret", "sk-test-k2-secret"
MSG = [{"role": "user", "content": "What is the capital of France?"}]


async def post(session: aiohttp.ClientSession, proxy: Any, key: str = K1, **extra: Any) -> aiohttp.ClientResponse:
    body = {"model": "gpt-4o-mini", "messages": MSG, **extra}
    async with session.post(
        proxy.base_url + "/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}
    ) as r:
        await r.read()
        return r


async def test_limits_two_replicas_sharing_redis_admit_exactly_what_the_budget_fits(
    make_proxy, write_policy, upstream, redis_server: RedisServer
) -> None:
    t = "t" + uuid.uuid4().hex[:8]
    prompt = tokens.prompt_tokens(Route.CHAT, {"messages": MSG}, tokens.for_model("gpt-4o-mini"))
    per_request = prompt + 50  # the clamp, injected: every reservation is an upper bound
    fits = 5
    rules = write_policy(
        t,
        team_cfg={"budget": {"tokens_per_day": fits * per_request}},
        limits={"inject_max_tokens": True, "conversation": {"max_tokens": 50}},
    )
    url = redis_server.url + "?socket_timeout=10&socket_connect_timeout=10"  # a loaded CI box is slow
    replicas = [await make_proxy(rules, redis_url=url) for _ in range(2)]
    upstream.default = Reply(delay_s=0.3, usage=(prompt, 50))  # all in flight at once, worst-case usage
    async with aiohttp.ClientSession() as s:
        results = await asyncio.gather(*(post(s, replicas[i % 2]) for i in range(24)))
    statuses = [r.status for r in results]
    assert statuses.count(200) == fits
    assert statuses.count(429) == 24 - fits
    assert all(r.headers.get("Retry-After") for r in results if r.status == 429)
    assert all(req.json["max_completion_tokens"] == 50 for req in upstream.requests)
    store = replicas[0].runtime.services.state
    assert store.backend == "redis" and replicas[1].runtime.services.state is not store


async def test_limits_redis_outage_fails_open_or_closed_per_key_and_recovers(
    make_proxy, write_policy, upstream, private_redis: RedisServer
) -> None:
    t = "t" + uuid.uuid4().hex[:8]
    rules = write_policy(
        t,
        key={"rate_limits": {"rpm": 1000}},  # k1: the global fail mode (open)
        key2={"rate_limits": {"rpm": 1000}, "fail_mode": "closed"},
        limits={"fail_mode": "open"},
    )
    proxy = await make_proxy(rules, redis_url=private_redis.url)
    store = proxy.runtime.services.state
    async with aiohttp.ClientSession() as s:
        ok = await post(s, proxy)
        assert ok.status == 200 and ok.headers["x-ratelimit-limit-requests"] == "1000"
        private_redis.stop()
        opened = await post(s, proxy, K1)
        closed = await post(s, proxy, K2)
        assert opened.status == 200 and opened.headers["x-guardrail-decision"] == "flag"
        assert "x-ratelimit-limit-requests" not in opened.headers  # served without limits
        assert closed.status == 503 and closed.headers["Retry-After"] == "1"
        assert store.health.fail_open >= 1 and store.health.fail_closed >= 1 and not store.health.up
        async with s.get(proxy.root + "/readyz") as r:
            assert (await r.json())["checks"]["state"]["up"] is False
        async with s.get(proxy.root + "/metrics") as r:  # counted where operators look
            metrics = await r.text()
        assert 'guardrail_state_up{backend="redis"} 0.0' in metrics
        assert 'guardrail_state_events_total{backend="redis",event="fail_closed"} 1.0' in metrics
        private_redis.start()
        for _ in range(200):  # recovers by itself once Redis answers again
            r = await post(s, proxy, K2)
            if r.status == 200:
                break
            await asyncio.sleep(0.02)
        else:
            pytest.fail("the proxy did not recover when Redis came back")
        assert r.headers["x-ratelimit-limit-requests"] == "1000" and store.health.up
        assert store.health.recoveries >= 1


async def test_limits_redis_outage_with_the_openai_sdk_fail_closed(
    make_proxy, write_policy, upstream, private_redis: RedisServer
) -> None:
    t = "t" + uuid.uuid4().hex[:8]
    proxy = await make_proxy(write_policy(t, limits={"fail_mode": "closed"}), redis_url=private_redis.url)
    private_redis.stop()
    client = openai.AsyncOpenAI(base_url=proxy.base_url, api_key=K1, max_retries=0)
    with pytest.raises(openai.InternalServerError) as exc:
        await client.chat.completions.create(model="gpt-4o-mini", messages=MSG)
    assert exc.value.status_code == 503 and exc.value.code == "limits_unavailable"
    assert upstream.requests == []


def test_limits_pinned_model_without_a_price_does_not_load(write_policy) -> None:
    rules = write_policy(
        "t" + uuid.uuid4().hex[:8],
        models={"gpt-4o-mini": {"pin": "gpt-4o-mini"}, "gpt-4o": {"pin": "gpt-4o-2099-01-01"}},
    )
    with pytest.raises(RuleLoadError) as exc:
        build_ruleset(rules)
    assert exc.value.file.endswith("pricing.yaml") and "gpt-4o-2099-01-01" in str(exc.value)


def test_limits_allow_list_naming_an_undeclared_model_does_not_load(write_policy) -> None:
    rules = write_policy("t" + uuid.uuid4().hex[:8], key={"models": ["gpt-4o-mini", "gpt-5-unpinned"]})
    with pytest.raises(RuleLoadError, match="gpt-5-unpinned"):
        build_ruleset(rules)
