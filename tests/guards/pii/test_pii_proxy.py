"""Through the proxy with the real openai SDK: the upstream never sees the values, the client gets them back."""

from __future__ import annotations

import json
from pathlib import Path

import openai
import pytest
import yaml

from proxy.devtools.fake_upstream import FakeUpstream, Reply
from tests.conftest import DEV_KEY, MakeProxy, ProxyHandle
from tests.guards.pii.conftest import edit_pii

NAME, MAIL, CARD = "Lena Andersson", "lena.a@gmail.com", "4887725427673522"
PROMPT = f"Hi, I am {NAME}. Write to {MAIL} that card {CARD} was blocked. {NAME} thanks you."


def client(proxy: ProxyHandle) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=proxy.base_url, api_key=DEV_KEY, max_retries=0)


def sent(upstream: FakeUpstream) -> str:
    assert len(upstream.requests) == 1
    return upstream.requests[0].body.decode()


async def collect(stream: openai.AsyncStream[object]) -> tuple[str, str | None]:
    text, finish = "", None
    async for chunk in stream:
        for ch in chunk.choices:  # type: ignore[attr-defined]
            text += ch.delta.content or ""
            finish = ch.finish_reason or finish
    return text, finish


async def test_upstream_sees_placeholders_and_client_gets_values(proxy: ProxyHandle, upstream: FakeUpstream) -> None:
    resp = await client(proxy).chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": PROMPT}]
    )
    body = sent(upstream)
    assert NAME not in body and MAIL not in body and CARD not in body
    msg = json.loads(body)["messages"][0]["content"]
    assert msg == (
        "Hi, I am <PERSON_1>. Write to <EMAIL_ADDRESS_1> that card ************3522 was blocked. <PERSON_1> thanks you."
    )
    # The fake upstream echoes the prompt: placeholders come back restored, the mask stays.
    assert resp.parse().choices[0].message.content == "You said: " + PROMPT.replace(CARD, "************3522")
    assert resp.headers["x-guardrail-decision"] == "rewrite"
    assert "pii.PERSON" in resp.headers["x-guardrail-rules"]


async def test_stream_restores_a_placeholder_split_across_chunks(proxy: ProxyHandle, upstream: FakeUpstream) -> None:
    upstream.script(Reply(chunks=["Dear <PER", "SON_", "1>, we wrote to <EMAIL_ADD", "RESS_1>. Bye <PERSON_1>"]))
    stream = await client(proxy).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": PROMPT}], stream=True
    )
    text, finish = await collect(stream)
    assert text == f"Dear {NAME}, we wrote to {MAIL}. Bye {NAME}"
    assert finish == "stop"
    assert NAME not in sent(upstream)


async def test_responses_api_and_history_are_pseudonymised_consistently(
    proxy: ProxyHandle, upstream: FakeUpstream
) -> None:
    c = client(proxy)
    resp = await c.responses.create(
        model="gpt-4o-mini",
        input=[
            {"role": "user", "content": f"My mail is {MAIL}."},
            {"role": "assistant", "content": f"Noted, {MAIL}."},
            {"role": "user", "content": f"Please ask Ahmed Khan about {MAIL}."},
        ],
    )
    body = json.loads(sent(upstream))
    texts = [item["content"] for item in body["input"]]
    assert texts == [
        "My mail is <EMAIL_ADDRESS_1>.",
        "Noted, <EMAIL_ADDRESS_1>.",
        "Please ask <PERSON_1> about <EMAIL_ADDRESS_1>.",
    ]
    assert resp.output_text == f"You said: Please ask Ahmed Khan about {MAIL}."


async def test_allow_listed_values_pass(proxy: ProxyHandle, upstream: FakeUpstream) -> None:
    await client(proxy).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Forward it to support@example.com please."}]
    )
    assert "support@example.com" in sent(upstream)


async def test_tool_results_are_covered(proxy: ProxyHandle, upstream: FakeUpstream) -> None:
    await client(proxy).chat.completions.create(
        model="gpt-4o-mini",
        messages=[
            {"role": "user", "content": "Look up the customer."},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "crm", "arguments": "{}"}}],
            },
            {"role": "tool", "tool_call_id": "c1", "content": f'{{"email": "{MAIL}", "ssn": "550-53-3582"}}'},
        ],
    )
    tool = json.loads(sent(upstream))["messages"][2]["content"]
    assert json.loads(tool) == {"email": "<EMAIL_ADDRESS_1>", "ssn": "<US_SSN>"}


async def test_output_pii_not_in_request_is_redacted(proxy: ProxyHandle, upstream: FakeUpstream) -> None:
    upstream.script(Reply(text=f"Sure {NAME}... <PERSON_1>: call 618-226-1460 or mail x9@corp-mail.org."))
    resp = await client(proxy).chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": f"I am {NAME}, who can help?"}]
    )
    text = resp.parse().choices[0].message.content
    assert text == f"Sure {NAME}... {NAME}: call <PHONE_NUMBER> or mail <EMAIL_ADDRESS>."
    assert "pii.output.PHONE_NUMBER" in resp.headers["x-guardrail-rules"]


async def test_output_pii_block_ends_the_stream(
    make_proxy: MakeProxy, rules_copy: Path, upstream: FakeUpstream
) -> None:
    edit_pii(rules_copy, output={"action": "block", "entities": ["US_SSN", "CREDIT_CARD"]})
    proxy = await make_proxy(rules_dir=rules_copy)
    upstream.script(Reply(chunks=["The number ", "is 550-53-", "3582, done."]))
    stream = await client(proxy).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "What is a valid SSN?"}], stream=True
    )
    text, finish = await collect(stream)
    assert finish == "content_filter"
    assert "3582" not in text


async def test_block_action_refuses_before_upstream(
    make_proxy: MakeProxy, rules_copy: Path, upstream: FakeUpstream
) -> None:
    data = yaml.safe_load((rules_copy / "pii.yaml").read_text())
    data["entities"]["CREDIT_CARD"]["action"] = "block"
    edit_pii(rules_copy, entities=data["entities"])
    proxy = await make_proxy(rules_dir=rules_copy)
    with pytest.raises(openai.BadRequestError) as exc:
        await client(proxy).chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": PROMPT}])
    assert exc.value.body["code"] == "content_filter"  # type: ignore[index]
    assert exc.value.body["rule_ids"] == ["pii.CREDIT_CARD"]  # type: ignore[index]
    assert CARD not in json.dumps(exc.value.body)
    assert upstream.requests == []


async def test_pattern_only_mode_through_the_proxy(
    make_proxy: MakeProxy, rules_copy: Path, upstream: FakeUpstream
) -> None:
    edit_pii(rules_copy, ner=False)
    proxy = await make_proxy(rules_dir=rules_copy)
    resp = await client(proxy).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": PROMPT}]
    )
    body = sent(upstream)
    assert MAIL not in body and CARD not in body
    assert NAME in body  # no NER: names pass in this mode
    assert resp.choices[0].message.content == "You said: " + PROMPT.replace(CARD, "************3522")


async def test_conversation_scope_keeps_placeholders_across_requests(
    make_proxy: MakeProxy, rules_copy: Path, upstream: FakeUpstream
) -> None:
    edit_pii(rules_copy, mapping_scope="conversation")
    proxy = await make_proxy(rules_dir=rules_copy)
    c = client(proxy)
    first = [{"role": "user", "content": f"I am {NAME}."}]
    await c.chat.completions.create(model="gpt-4o-mini", messages=first)
    turn2 = [
        *first,
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": f"Tell my colleague Ahmed Khan that {NAME} called."},
    ]
    await c.chat.completions.create(model="gpt-4o-mini", messages=turn2)
    msgs = [json.loads(r.body)["messages"] for r in upstream.requests]
    assert msgs[0][0]["content"] == "I am <PERSON_1>."
    assert msgs[1][2]["content"] == "Tell my colleague <PERSON_2> that <PERSON_1> called."


async def test_responses_surface_off_still_restores_but_skips_output_check(
    make_proxy: MakeProxy, rules_copy: Path, upstream: FakeUpstream
) -> None:
    edit_pii(rules_copy, surfaces={"responses": False})
    proxy = await make_proxy(rules_dir=rules_copy)
    upstream.script(Reply(text="Hello <PERSON_1>, mail x9@corp-mail.org"))
    resp = await client(proxy).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": f"I am {NAME}."}]
    )
    assert resp.choices[0].message.content == f"Hello {NAME}, mail x9@corp-mail.org"
