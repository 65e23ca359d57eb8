"""Upstream failures reach the client as OpenAI-shaped errors or well-formed stream ends."""

from __future__ import annotations

import asyncio
import json
import socket

import aiohttp
import openai
import pytest

from proxy.devtools.fake_upstream import FakeUpstream, Reply
from tests.conftest import DEV_KEY, MakeProxy, ProxyHandle

MSG = [{"role": "user", "content": "hello"}]


def client(proxy: ProxyHandle) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=proxy.base_url, api_key=DEV_KEY, max_retries=0)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_unreachable_upstream_is_502(make_proxy: MakeProxy) -> None:
    proxy = await make_proxy(upstream_url=f"http://127.0.0.1:{free_port()}/v1", max_retries=1)
    with pytest.raises(openai.APIStatusError) as exc:
        await client(proxy).chat.completions.create(model="gpt-4o-mini", messages=MSG)
    assert exc.value.status_code == 502
    assert exc.value.body["code"] == "upstream_unreachable"


async def test_5xx_retried_within_bound_then_succeeds(proxy: ProxyHandle, upstream: FakeUpstream) -> None:
    upstream.script(Reply(status=503), Reply(status=500))
    resp = await client(proxy).chat.completions.create(model="gpt-4o-mini", messages=MSG)
    assert resp.choices[0].message.content == "You said: hello"
    assert len(upstream.requests) == 3


async def test_5xx_after_retries_passes_upstream_error(proxy: ProxyHandle, upstream: FakeUpstream) -> None:
    upstream.script(*[Reply(status=502)] * 3)
    with pytest.raises(openai.APIStatusError) as exc:
        await client(proxy).chat.completions.create(model="gpt-4o-mini", messages=MSG)
    assert exc.value.status_code == 502
    assert len(upstream.requests) == 3  # 1 + max_retries, never more


async def test_429_retry_after_is_honoured(proxy: ProxyHandle, upstream: FakeUpstream) -> None:
    upstream.script(Reply(status=429, headers={"Retry-After": "0.3"}))
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    resp = await client(proxy).chat.completions.create(model="gpt-4o-mini", messages=MSG)
    assert loop.time() - t0 >= 0.3
    assert resp.choices[0].message.content == "You said: hello"
    assert len(upstream.requests) == 2


async def test_client_errors_are_not_retried(proxy: ProxyHandle, upstream: FakeUpstream) -> None:
    err = {"error": {"message": "bad param", "type": "invalid_request_error", "code": "bad"}}
    upstream.script(Reply(status=400, error=err))
    with pytest.raises(openai.BadRequestError) as exc:
        await client(proxy).chat.completions.create(model="gpt-4o-mini", messages=MSG)
    assert exc.value.body["code"] == "bad"
    assert len(upstream.requests) == 1


async def test_first_byte_timeout_is_504(make_proxy: MakeProxy, upstream: FakeUpstream) -> None:
    proxy = await make_proxy(first_byte_timeout_s=0.2, max_retries=0)
    upstream.script(Reply(delay_s=1.0))
    with pytest.raises(openai.APIStatusError) as exc:
        await client(proxy).chat.completions.create(model="gpt-4o-mini", messages=MSG)
    assert exc.value.status_code == 504
    assert exc.value.body["code"] == "upstream_timeout"


@pytest.mark.parametrize("fault", ["invalid_json", "wrong_content_type"])
async def test_garbage_from_upstream_is_502(proxy: ProxyHandle, upstream: FakeUpstream, fault: str) -> None:
    upstream.script(Reply(fault=fault))
    with pytest.raises(openai.APIStatusError) as exc:
        await client(proxy).chat.completions.create(model="gpt-4o-mini", messages=MSG)
    assert exc.value.status_code == 502
    assert exc.value.body["code"] == "upstream_bad_response"


async def test_reset_before_headers_retried_then_502(make_proxy: MakeProxy, upstream: FakeUpstream) -> None:
    proxy = await make_proxy(max_retries=1)
    upstream.script(Reply(fault="reset_before_headers"), Reply(fault="reset_before_headers"))
    with pytest.raises(openai.APIStatusError) as exc:
        await client(proxy).chat.completions.create(model="gpt-4o-mini", messages=MSG)
    assert exc.value.status_code == 502
    assert len(upstream.requests) == 2


@pytest.mark.parametrize("fault", ["truncate", "reset_after_headers"])
async def test_broken_stream_ends_with_error_event(proxy: ProxyHandle, upstream: FakeUpstream, fault: str) -> None:
    upstream.script(Reply(text="a fairly long answer that will be cut off somewhere", fault=fault))
    stream = await client(proxy).chat.completions.create(model="gpt-4o-mini", messages=MSG, stream=True)
    with pytest.raises(openai.APIError) as exc:
        async for _ in stream:
            pass
    assert "ended before it was complete" in exc.value.message


async def test_idle_timeout_between_chunks_ends_stream(make_proxy: MakeProxy, upstream: FakeUpstream) -> None:
    proxy = await make_proxy(idle_timeout_s=0.2)
    upstream.script(Reply(text="slow drip", chunk_delay_s=0.5))
    stream = await client(proxy).chat.completions.create(model="gpt-4o-mini", messages=MSG, stream=True)
    with pytest.raises(openai.APIError):
        async for _ in stream:
            pass


async def test_breaker_opens_then_recovers(make_proxy: MakeProxy, upstream: FakeUpstream) -> None:
    proxy = await make_proxy(max_retries=0, breaker_failures=3, breaker_reset_s=0.3)
    c = client(proxy)
    upstream.script(*[Reply(status=500)] * 3)
    for _ in range(3):
        with pytest.raises(openai.InternalServerError):
            await c.chat.completions.create(model="gpt-4o-mini", messages=MSG)
    with pytest.raises(openai.APIStatusError) as exc:
        await c.chat.completions.create(model="gpt-4o-mini", messages=MSG)
    assert exc.value.status_code == 503 and exc.value.body["code"] == "upstream_circuit_open"
    assert exc.value.response.headers["Retry-After"]
    assert len(upstream.requests) == 3  # the open breaker did not call upstream
    await asyncio.sleep(0.35)
    resp = await c.chat.completions.create(model="gpt-4o-mini", messages=MSG)  # half-open probe succeeds
    assert resp.choices[0].message.content == "You said: hello"
    assert proxy.runtime.upstream.breaker.state.name == "CLOSED"


async def test_client_disconnect_mid_stream_cancels_upstream(proxy: ProxyHandle, upstream: FakeUpstream) -> None:
    upstream.script(Reply(text="x" * 400, chunk_delay_s=0.02))
    body = {"model": "gpt-4o-mini", "messages": MSG, "stream": True}
    async with aiohttp.ClientSession() as s:
        resp = await s.post(
            proxy.base_url + "/chat/completions", json=body, headers={"Authorization": f"Bearer {DEV_KEY}"}
        )
        first = await resp.content.readline()
        assert first.startswith(b"data: ")
        resp.close()  # the client goes away mid-stream
    for _ in range(100):
        if upstream.disconnects:
            break
        await asyncio.sleep(0.02)
    assert upstream.disconnects == 1
    assert upstream.completed_streams == 0


async def test_upstream_error_body_not_json_is_wrapped(proxy: ProxyHandle, upstream: FakeUpstream) -> None:
    upstream.script(Reply(status=400, error={"detail": "nope"}))
    async with aiohttp.ClientSession() as s:
        body = {"model": "gpt-4o-mini", "messages": MSG}
        async with s.post(
            proxy.base_url + "/chat/completions", json=body, headers={"Authorization": f"Bearer {DEV_KEY}"}
        ) as r:
            payload = json.loads(await r.read())
            assert r.status == 400
            assert payload["error"]["code"] == "upstream_error"
