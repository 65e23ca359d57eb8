"""Seeded secrets (proxy key, upstream key, PII values) never reach logs, /metrics, audit or errors."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import aiohttp
import openai
import pytest

from proxy.devtools.fake_upstream import FakeUpstream, Reply
from proxy.logs import JsonFormatter
from proxy.ops.audit import AUDIT
from tests.conftest import DEV_KEY, UPSTREAM_KEY, MakeProxy

EMAIL = "jane.doe.4711@gmail.com"
SSN = "536-22-8143"
WRONG_KEY = "sk-guardrail-wrong-4f9a1c2e7b"
SEEDED = (DEV_KEY, UPSTREAM_KEY, EMAIL, SSN, WRONG_KEY)


def pii_messages(extra: str = "") -> list[dict[str, str]]:
    return [{"role": "user", "content": f"My email is {EMAIL} and my SSN is {SSN}. {extra}"}]


async def test_no_secret_or_pii_anywhere(
    make_proxy: MakeProxy,
    upstream: FakeUpstream,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    audit_path = tmp_path / "audit.jsonl"
    monkeypatch.setenv("GUARDRAIL_AUDIT_PATH", str(audit_path))
    monkeypatch.setenv("GUARDRAIL_AUDIT_SAMPLE_RATE", "1")
    proxy = await make_proxy()
    c = openai.AsyncOpenAI(base_url=proxy.base_url, api_key=DEV_KEY, max_retries=0)
    errors: list[str] = []

    upstream.script(Reply(text=f"Noted, {EMAIL}.", usage=(20, 5)))
    await c.chat.completions.create(model="gpt-4o-mini", messages=pii_messages())
    upstream.script(Reply(text=f"Streaming back {SSN}", usage=(20, 5)))
    async for _ in await c.chat.completions.create(model="gpt-4o-mini", messages=pii_messages(), stream=True):
        pass
    with pytest.raises(openai.BadRequestError) as blocked:
        await c.chat.completions.create(model="gpt-4o-mini", messages=pii_messages("About Project Nightjar?"))
    errors.append(blocked.value.response.text)
    upstream.script(Reply(status=500), Reply(status=500), Reply(status=500))
    with pytest.raises(openai.InternalServerError) as failed:
        await c.chat.completions.create(model="gpt-4o-mini", messages=pii_messages())
    errors.append(failed.value.response.text)
    bad = openai.AsyncOpenAI(base_url=proxy.base_url, api_key=WRONG_KEY, max_retries=0)
    with pytest.raises(openai.AuthenticationError) as unauth:
        await bad.chat.completions.create(model="gpt-4o-mini", messages=pii_messages())
    errors.append(unauth.value.response.text)
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {DEV_KEY}"}) as s:
        broken = f'{{"model": "gpt-4o-mini", "messages": [{{"role": "user", "content": "{EMAIL} {SSN}"'
        async with s.post(f"{proxy.base_url}/chat/completions", data=broken) as r:
            assert r.status == 400
            errors.append(await r.text())
        wrong_type = {"model": "gpt-4o-mini", "messages": EMAIL}
        async with s.post(f"{proxy.base_url}/chat/completions", json=wrong_type) as r:
            assert r.status == 400
            errors.append(await r.text())
        async with s.get(f"{proxy.root}/metrics") as r:
            metrics = await r.text()
    await proxy.app[AUDIT].drained()

    fmt = JsonFormatter()
    # The proxy's own log records (the openai SDK client in this process logs its own requests at DEBUG).
    ours = [r for r in caplog.records if r.name.startswith(("guardrail", "aiohttp", "proxy"))]
    log_lines = [fmt.format(rec) for rec in ours]
    request_lines = [json.loads(fmt.format(r)) for r in ours if r.name == "guardrail.request"]
    audit = audit_path.read_text()
    # One request line per request, each with a request id, the refused ones (401, bad JSON) included.
    assert len(request_lines) == 7 and all(len(line["request_id"]) == 32 for line in request_lines)
    assert sorted(line["status"] for line in request_lines) == [200, 200, 400, 400, 400, 401, 500]
    unauth_line = next(line for line in request_lines if line["status"] == 401)
    assert unauth_line["request_id"] == unauth.value.response.headers["x-request-id"]
    assert unauth_line["error_code"] == "invalid_api_key"
    assert sorted(json.loads(line)["status"] for line in audit.splitlines()) == [200, 200, 400, 400, 400, 401, 500]
    # Sampled records carry the PII guard's rewritten prompt, so review sees text without the values.
    redacted = [r["input"]["redacted"] for r in map(json.loads, audit.splitlines()) if "redacted" in r.get("input", {})]
    assert redacted and all("My email is" in texts[0] for texts in redacted)
    assert "guardrail_requests_total" in metrics and len(errors) == 5
    for where, text in {
        "logs": "\n".join(log_lines),
        "metrics": metrics,
        "audit": audit,
        "errors": "\n".join(errors),
    }.items():
        for secret in SEEDED:
            assert secret not in text, f"{secret!r} leaked into {where}"
    # The upstream got the proxy's own key, never the client's.
    assert upstream.requests and all(
        r.headers.get("Authorization") == f"Bearer {UPSTREAM_KEY}" for r in upstream.requests
    )
