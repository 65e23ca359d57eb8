"""The limits guard through the real proxy, with the real openai SDK as the client."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import openai
import pytest

from proxy.devtools.fake_upstream import Reply
from proxy.state.store import Periods, Quota, Subject

K1, K2 = "sk-test-k1-secret", "sk-test-k2-secret"
MSG = [{"role": "user", "content": "Hello there"}]


def sdk(proxy: Any, key: str = K1) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=proxy.base_url, api_key=key, max_retries=0)


def team() -> str:
    return "t" + uuid.uuid4().hex[:8]


async def eventually(check: Callable[[], Awaitable[bool]], tries: int = 250) -> None:
    for _ in range(tries):
        if await check():
            return
        await asyncio.sleep(0.02)
    pytest.fail("condition never became true")


async def spent_tokens(proxy: Any, t: str, key: str = "k1") -> int:
    day, _ = await proxy.runtime.services.state.spent(t, Subject("key", f"{t}-{key}", Quota()), Periods.at())
    return int(day.tokens)


async def spent_nano(proxy: Any, t: str) -> int:
    day, _ = await proxy.runtime.services.state.spent(t, Subject("team", t, Quota()), Periods.at())
    return int(day.nano_usd)


async def test_limits_rpm_429_with_retry_after_and_ratelimit_headers(make_proxy, write_policy) -> None:
    t = team()
    proxy = await make_proxy(write_policy(t, key={"rate_limits": {"rpm": 2, "tpm": 100000}}))
    client = sdk(proxy)
    first = await client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MSG)
    assert first.headers["x-ratelimit-limit-requests"] == "2"
    assert first.headers["x-ratelimit-remaining-requests"] == "1"
    assert first.headers["x-ratelimit-limit-tokens"] == "100000"
    assert int(first.headers["x-ratelimit-remaining-tokens"]) < 100000
    assert first.headers["x-ratelimit-reset-requests"].endswith("s")
    await client.chat.completions.create(model="gpt-4o-mini", messages=MSG)
    with pytest.raises(openai.RateLimitError) as exc:
        await client.chat.completions.create(model="gpt-4o-mini", messages=MSG)
    err = exc.value
    assert err.code == "rate_limit_exceeded"
    assert 1 <= int(err.response.headers["Retry-After"]) <= 30
    assert err.response.headers["x-ratelimit-remaining-requests"] == "0"
    assert err.response.headers["x-ratelimit-limit-requests"] == "2"
    assert "x-ratelimit-reset-tokens" in err.response.headers


async def test_limits_exhausted_budget_is_429_insufficient_quota(make_proxy, write_policy, upstream) -> None:
    t = team()
    proxy = await make_proxy(write_policy(t, team_cfg={"budget": {"usd_per_day": 0.000001}}))
    with pytest.raises(openai.RateLimitError) as exc:
        await sdk(proxy).chat.completions.create(model="gpt-4o-mini", messages=MSG)
    assert exc.value.status_code == 429 and exc.value.code == "insufficient_quota"
    assert int(exc.value.response.headers["Retry-After"]) >= 1
    assert f"team:{t}" in exc.value.message
    assert upstream.requests == []  # refused before anything was forwarded


async def test_limits_alias_is_pinned_and_charged_at_the_pinned_price(make_proxy, write_policy, upstream) -> None:
    t = team()
    proxy = await make_proxy(write_policy(t, key={"budget": {"usd_per_day": 1}}))
    upstream.script(Reply(usage=(1000, 100)))
    await sdk(proxy).chat.completions.create(model="gpt-4o", messages=MSG)
    assert upstream.requests[-1].json["model"] == "gpt-4o-2024-08-06"
    assert await spent_nano(proxy, t) == 1000 * 2500 + 100 * 10000  # $2.50 / $10 per 1M tokens


async def test_limits_model_not_allowed_for_the_key_is_404_naming_it(make_proxy, write_policy, upstream) -> None:
    proxy = await make_proxy(write_policy(team()))
    with pytest.raises(openai.NotFoundError) as exc:
        await sdk(proxy, K2).chat.completions.create(model="gpt-4o", messages=MSG)
    assert exc.value.code == "model_not_found" and "gpt-4o" in exc.value.message
    assert upstream.requests == []


async def test_limits_stream_settles_to_the_real_usage(make_proxy, write_policy, upstream) -> None:
    t = team()
    proxy = await make_proxy(write_policy(t, key={"rate_limits": {"concurrent": 1}}))
    upstream.script(Reply(text="one two three", usage=(40, 7)))
    stream = await sdk(proxy).chat.completions.create(model="gpt-4o-mini", messages=MSG, stream=True)
    chunks = [c async for c in stream]
    assert all(c.usage is None for c in chunks)  # the client did not ask for the usage chunk
    assert upstream.requests[-1].json["stream_options"] == {"include_usage": True}
    await eventually(lambda: _eq(spent_tokens(proxy, t), 47))


async def _eq(value: Awaitable[int], expected: int) -> bool:
    return await value == expected


async def test_limits_upstream_error_settles_to_nothing_and_frees_the_slot(make_proxy, write_policy, upstream) -> None:
    t = team()
    proxy = await make_proxy(write_policy(t, key={"rate_limits": {"concurrent": 1}}))
    upstream.script(
        Reply(status=400, error={"error": {"message": "bad", "type": "invalid_request_error", "code": "x"}})
    )
    with pytest.raises(openai.BadRequestError):
        await sdk(proxy).chat.completions.create(model="gpt-4o-mini", messages=MSG)
    assert await spent_tokens(proxy, t) == 0
    await sdk(proxy).chat.completions.create(model="gpt-4o-mini", messages=MSG)  # the slot was freed


async def test_limits_client_disconnect_settles_what_was_streamed(make_proxy, write_policy, upstream) -> None:
    t = team()
    proxy = await make_proxy(write_policy(t, key={"rate_limits": {"concurrent": 1}}))
    upstream.script(Reply(text="x" * 400, chunk_delay_s=0.02))
    async with aiohttp.ClientSession() as s:
        resp = await s.post(
            proxy.base_url + "/chat/completions",
            json={"model": "gpt-4o-mini", "messages": MSG, "stream": True, "max_tokens": 1000},
            headers={"Authorization": f"Bearer {K1}"},
        )
        await resp.content.readany()
        resp.close()  # the client goes away mid-stream
    reserved = await spent_tokens(proxy, t)  # prompt estimate + max_tokens, while in flight
    assert reserved > 1000
    # Settled: charged the prompt and what was streamed before the client left, not the reservation.
    await eventually(lambda: _settled(spent_tokens(proxy, t)))
    await sdk(proxy).chat.completions.create(model="gpt-4o-mini", messages=MSG)  # slot released


async def _settled(value: Awaitable[int]) -> bool:
    return 0 < await value < 1000


async def test_limits_responses_stream_and_embeddings_settle_to_usage(make_proxy, write_policy, upstream) -> None:
    t = team()
    rules = write_policy(
        t,
        key={"models": ["gpt-4o-mini", "text-embedding-3-small"]},
        models={"gpt-4o-mini": {"pin": "gpt-4o-mini"}, "text-embedding-3-small": {"pin": "text-embedding-3-small"}},
    )
    proxy = await make_proxy(rules)
    upstream.script(Reply(text="fine", usage=(12, 5)))
    stream = await sdk(proxy).responses.create(model="gpt-4o-mini", input="how are you?", stream=True)
    async for _ in stream:
        pass
    await eventually(lambda: _eq(spent_tokens(proxy, t), 17))
    await sdk(proxy).embeddings.create(model="text-embedding-3-small", input=["a", "b", "c"])
    assert await spent_tokens(proxy, t) == 17 + 3  # the fake upstream counts one token per input
