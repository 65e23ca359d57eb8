"""Bad input gets a clear OpenAI-shaped error with the right status, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
import openai
import pytest
import yaml

from proxy.devtools.fake_upstream import FakeUpstream
from tests.conftest import DEV_KEY, MakeProxy, ProxyHandle

AUTH = {"Authorization": f"Bearer {DEV_KEY}", "Content-Type": "application/json"}


async def post(proxy: ProxyHandle, path: str, data: bytes, headers: dict[str, str] | None = None) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as s:
        async with s.post(proxy.base_url + path, data=data, headers=AUTH if headers is None else headers) as r:
            body = await r.json(content_type=None)
            return r.status, body


def assert_openai_error(body: dict, code: str) -> None:
    err = body["error"]
    assert set(err) >= {"message", "type", "code"}
    assert err["code"] == code, err
    assert "Traceback" not in err["message"]


@pytest.mark.parametrize(
    ("data", "status", "code"),
    [
        (b"{not json", 400, "invalid_json"),
        (b"", 400, "invalid_json"),
        (b"[1, 2]", 400, "invalid_json"),
        (json.dumps({"messages": [{"role": "user", "content": "hi"}]}).encode(), 400, "missing_required_parameter"),
        (json.dumps({"model": "gpt-4o-mini", "messages": "hi"}).encode(), 400, "invalid_value"),
        (json.dumps({"model": "gpt-4o-mini", "messages": []}).encode(), 400, "invalid_value"),
        (
            json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user"}], "max_tokens": -1}).encode(),
            400,
            "invalid_value",
        ),
        (b'{"model": "gpt-4o-mini", "messages": ' + b"[" * 200 + b"]" * 200 + b"}", 400, "invalid_json"),
        (b'{"model": "gpt-4o-mini", "messages": ' + b"[" * 5000 + b"]" * 5000 + b"}", 400, "invalid_json"),
        (
            json.dumps({"model": "gpt-5-secret", "messages": [{"role": "user", "content": "hi"}]}).encode(),
            404,
            "model_not_found",
        ),
    ],
)
async def test_bad_bodies_rejected_with_openai_error(
    proxy: ProxyHandle, upstream: FakeUpstream, data: bytes, status: int, code: str
) -> None:
    got, body = await post(proxy, "/chat/completions", data)
    assert got == status
    assert_openai_error(body, code)
    assert upstream.requests == []  # nothing bad was forwarded


async def test_missing_and_unknown_key_401(proxy: ProxyHandle, upstream: FakeUpstream) -> None:
    data = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}).encode()
    for headers in ({}, {"Authorization": "Bearer sk-not-a-proxy-key"}, {"Authorization": "Basic abc"}):
        got, body = await post(proxy, "/chat/completions", data, headers)
        assert got == 401
        assert_openai_error(body, "invalid_api_key")
    assert upstream.requests == []


async def test_sdk_sees_authentication_error(proxy: ProxyHandle) -> None:
    c = openai.AsyncOpenAI(base_url=proxy.base_url, api_key="sk-upstream-key-should-not-work", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        await c.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])


async def test_body_over_limit_413(make_proxy: MakeProxy, rules_copy: Path, upstream: FakeUpstream) -> None:
    pipeline = yaml.safe_load((rules_copy / "pipeline.yaml").read_text())
    pipeline["server"]["max_body_bytes"] = 1000
    (rules_copy / "pipeline.yaml").write_text(yaml.safe_dump(pipeline))
    proxy = await make_proxy(rules_dir=rules_copy)
    data = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x" * 2000}]}).encode()
    got, body = await post(proxy, "/chat/completions", data)
    assert got == 413
    assert_openai_error(body, "request_too_large")
    assert upstream.requests == []


async def test_unknown_paths_and_methods(proxy: ProxyHandle) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.get(proxy.base_url + "/files", headers=AUTH) as r:
            assert r.status == 404
            assert_openai_error(await r.json(), "unknown_url")
        async with s.get(proxy.base_url + "/chat/completions", headers=AUTH) as r:
            assert r.status == 405
            assert_openai_error(await r.json(), "method_not_allowed")
        async with s.get(proxy.root + "/nope") as r:
            assert r.status == 404
            assert_openai_error(await r.json(), "unknown_url")


async def test_health_and_readiness(proxy: ProxyHandle) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.get(proxy.root + "/healthz") as r:
            assert r.status == 200
        async with s.get(proxy.root + "/readyz") as r:
            body = await r.json()
            assert r.status == 200 and body["status"] == "ready"
            assert body["checks"]["rules"]["loaded"] is True
