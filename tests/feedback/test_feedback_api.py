"""POST /v1/feedback through the real openai SDK: accepted, validated, linked, counted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import openai
import pytest
import yaml

from proxy import feedback
from proxy.devtools.fake_upstream import FakeUpstream
from proxy.feedback.metrics import metrics_registry
from tests.conftest import DEV_KEY, ProxyHandle
from tests.shadow.conftest import StartProxy

OTHER_KEY = "sk-guardrail-other-team"


def client(proxy: ProxyHandle, key: str = DEV_KEY) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=proxy.base_url, api_key=key, max_retries=0)


async def ask(proxy: ProxyHandle, text: str = "Tell me a joke.", key: str = DEV_KEY) -> str:
    raw = await client(proxy, key).chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": text}]
    )
    return str(raw.headers["x-guardrail-request-id"])


async def send(proxy: ProxyHandle, body: dict[str, Any], key: str = DEV_KEY) -> Any:
    return await client(proxy, key).post("/feedback", body=body, cast_to=object)


def count(proxy: ProxyHandle, event: str, source: str = "explicit") -> float:
    labels = {"model": "gpt-4o-mini", "route": "chat.completions", "approved_id": "none", "event": event}
    value = metrics_registry(proxy.app).get_sample_value("guardrail_feedback_events_total", labels | {"source": source})
    return value or 0.0


def add_other_key(rules_dir: Path) -> None:
    path = rules_dir / "policy.yaml"
    data = yaml.safe_load(path.read_text())
    data["keys"].append({"id": "other", "team": "dev", "key": OTHER_KEY, "models": ["gpt-4o-mini"]})
    path.write_text(yaml.safe_dump(data))


@pytest.fixture
async def proxy(start_proxy: StartProxy, rules_copy: Path, upstream: FakeUpstream) -> ProxyHandle:
    add_other_key(rules_copy)
    return await start_proxy(rules_copy, feedback.install)


async def test_events_are_accepted_linked_and_counted(proxy: ProxyHandle) -> None:
    rid = await ask(proxy)
    out = await send(proxy, {"request_id": rid, "event": "thumbs_down", "reason": "not funny"})
    assert out == {"object": "feedback", "request_id": rid, "event": "thumbs_down", "recorded": True}
    await send(proxy, {"response_id": f"chatcmpl-{rid}", "event": "copied"})
    await send(proxy, {"request_id": rid, "event": "edited", "edited_text": "A better joke."})
    assert proxy.app[feedback.FEEDBACK].requests.get(rid).events == ["thumbs_down", "copied", "edited"]  # type: ignore[union-attr]
    assert (count(proxy, "thumbs_down"), count(proxy, "copied"), count(proxy, "edited")) == (1, 1, 1)


@pytest.mark.parametrize(
    ("body", "param", "code", "says"),
    [
        ({"request_id": "x", "event": "loved_it"}, "event", "invalid_value", "must be one of copied, retried"),
        ({"event": "copied"}, None, "invalid_value", "give 'request_id' or 'response_id'"),
        ({"request_id": "ID"}, "event", "missing_required_parameter", "Missing required parameter: 'event'"),
        ({"request_id": "ID", "event": "edited"}, None, "invalid_value", "event 'edited' needs 'edited_text'"),
        ({"request_id": "ID", "event": "copied", "reason": "x"}, None, "invalid_value", "'reason' is only for"),
        ({"request_id": "ID", "event": "copied", "score": 5}, "score", "unknown_parameter", "'score'"),
        ({"request_id": "not-an-id", "event": "copied"}, "request_id", "invalid_value", "32 hex characters"),
        ({"response_id": "chatcmpl-123", "event": "copied"}, "response_id", "invalid_value", "request id"),
    ],
)
async def test_bad_bodies_get_clear_400s(
    proxy: ProxyHandle, body: dict[str, Any], param: str | None, code: str, says: str
) -> None:
    rid = await ask(proxy)
    body = {k: (rid if v == "ID" else v) for k, v in body.items()}
    with pytest.raises(openai.BadRequestError) as exc:
        await send(proxy, body)
    err = exc.value.body
    assert isinstance(err, dict)
    assert (err["param"], err["code"], err["type"]) == (param, code, "invalid_request_error")
    assert says in err["message"]


async def test_unknown_or_foreign_ids_are_404(proxy: ProxyHandle) -> None:
    with pytest.raises(openai.NotFoundError) as exc:
        await send(proxy, {"request_id": "0" * 32, "event": "copied"})
    assert isinstance(exc.value.body, dict) and exc.value.body["code"] == "request_not_found"
    theirs = await ask(proxy, key=OTHER_KEY)
    with pytest.raises(openai.NotFoundError):
        await send(proxy, {"request_id": theirs, "event": "thumbs_down"})  # another key's request
    assert count(proxy, "thumbs_down") == 0


async def test_feedback_needs_a_proxy_key(proxy: ProxyHandle) -> None:
    rid = await ask(proxy)
    with pytest.raises(openai.AuthenticationError):
        await send(proxy, {"request_id": rid, "event": "copied"}, key="sk-not-a-proxy-key")


async def test_same_prompt_again_soon_is_an_implicit_retry(proxy: ProxyHandle) -> None:
    first = await ask(proxy, "Summarise this.")
    await ask(proxy, "Something else.")
    await ask(proxy, "Summarise this.", key=OTHER_KEY)  # another key: not a retry
    assert count(proxy, "retried", "implicit") == 0
    await ask(proxy, "Summarise this.")
    assert count(proxy, "retried", "implicit") == 1
    assert proxy.app[feedback.FEEDBACK].requests.get(first).events == ["retried"]  # type: ignore[union-attr]


async def test_outside_the_window_is_not_a_retry(
    start_proxy: StartProxy, rules_copy: Path, upstream: FakeUpstream
) -> None:
    proxy = await start_proxy(rules_copy)
    proxy.app[feedback.FEEDBACK].retries.window_s = 0.0
    await ask(proxy, "Again?")
    await ask(proxy, "Again?")
    assert count(proxy, "retried", "implicit") == 0
