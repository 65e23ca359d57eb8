"""Conversation limits: messages, documents, prompt tokens, and the max_tokens clamp."""

from __future__ import annotations

import uuid

import openai
import pytest

K1 = "sk-test-k1-secret"


def client(proxy) -> openai.AsyncOpenAI:  # type: ignore[no-untyped-def]
    return openai.AsyncOpenAI(base_url=proxy.base_url, api_key=K1, max_retries=0)


def team() -> str:
    return "t" + uuid.uuid4().hex[:8]


async def test_limits_too_many_messages_is_refused(make_proxy, write_policy, upstream) -> None:
    proxy = await make_proxy(write_policy(team(), key={"conversation": {"max_messages": 2}}))
    msgs = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}]
    with pytest.raises(openai.BadRequestError) as exc:
        await client(proxy).chat.completions.create(model="gpt-4o-mini", messages=msgs)  # type: ignore[arg-type]
    assert exc.value.code == "too_many_messages" and upstream.requests == []
    await client(proxy).chat.completions.create(model="gpt-4o-mini", messages=msgs[:2])  # type: ignore[arg-type]


async def test_limits_too_many_tool_results_is_refused(make_proxy, write_policy, upstream) -> None:
    proxy = await make_proxy(write_policy(team(), team_cfg={"conversation": {"max_documents": 1}}))
    call = {"id": "c1", "type": "function", "function": {"name": "search", "arguments": "{}"}}
    msgs = [
        {"role": "user", "content": "look it up"},
        {"role": "assistant", "content": None, "tool_calls": [call, {**call, "id": "c2"}]},
        {"role": "tool", "tool_call_id": "c1", "content": "doc one"},
        {"role": "tool", "tool_call_id": "c2", "content": "doc two"},
    ]
    with pytest.raises(openai.BadRequestError) as exc:
        await client(proxy).chat.completions.create(model="gpt-4o-mini", messages=msgs)  # type: ignore[arg-type]
    assert exc.value.code == "too_many_documents"


async def test_limits_prompt_over_the_token_limit_is_refused(make_proxy, write_policy, upstream) -> None:
    proxy = await make_proxy(write_policy(team(), limits={"conversation": {"max_prompt_tokens": 50}}))
    long = "the quick brown fox jumps over the lazy dog " * 20
    with pytest.raises(openai.BadRequestError) as exc:
        await client(proxy).chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": long}])
    assert exc.value.code == "context_length_exceeded" and "50" in exc.value.message


async def test_limits_max_tokens_is_clamped_and_key_overrides_team(make_proxy, write_policy, upstream) -> None:
    rules = write_policy(
        team(), key={"conversation": {"max_tokens": 64}}, team_cfg={"conversation": {"max_tokens": 4000}}
    )
    proxy = await make_proxy(rules)
    await client(proxy).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], max_tokens=500
    )
    assert upstream.requests[-1].json["max_tokens"] == 64
    await client(proxy).chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    assert "max_completion_tokens" not in upstream.requests[-1].json  # inject_max_tokens is off by default


async def test_limits_max_tokens_is_added_when_inject_is_on(make_proxy, write_policy, upstream) -> None:
    rules = write_policy(team(), limits={"inject_max_tokens": True, "conversation": {"max_tokens": 80}})
    proxy = await make_proxy(rules)
    await client(proxy).responses.create(model="gpt-4o-mini", input="hi")
    assert upstream.requests[-1].json["max_output_tokens"] == 80
