"""The trivial guard proves the path every guard shares: block, refuse, flag, monitor."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest
import yaml

from proxy.devtools.fake_upstream import FakeUpstream
from proxy.rules.loader import RuleLoadError
from proxy.rules.ruleset import build_ruleset
from tests.conftest import DEV_KEY, MakeProxy, ProxyHandle

SECRET = [{"role": "user", "content": "When does Project Nightjar launch?"}]


def client(proxy: ProxyHandle) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=proxy.base_url, api_key=DEV_KEY, max_retries=0)


def set_rule(rules_dir: Path, **changes: object) -> None:
    path = rules_dir / "denylist.yaml"
    data = yaml.safe_load(path.read_text())
    data["rules"][0].update(changes)
    path.write_text(yaml.safe_dump(data))


def set_mode(rules_dir: Path, mode: str) -> None:
    path = rules_dir / "pipeline.yaml"
    data = yaml.safe_load(path.read_text())
    for entry in data["request"]:
        if entry["guard"] == "phrase_denylist":
            entry["mode"] = mode
    path.write_text(yaml.safe_dump(data))


async def test_block_is_400_content_filter_with_rule_ids(proxy: ProxyHandle, upstream: FakeUpstream) -> None:
    with pytest.raises(openai.BadRequestError) as exc:
        await client(proxy).chat.completions.create(model="gpt-4o-mini", messages=SECRET)
    err = exc.value.body
    assert err["code"] == "content_filter" and err["type"] == "invalid_request_error"
    assert err["rule_ids"] == ["denylist.internal-codename"]
    assert exc.value.response.headers["x-guardrail-decision"] == "block"
    assert upstream.requests == []


async def test_refuse_answers_200_with_canned_message(
    make_proxy: MakeProxy, rules_copy: Path, upstream: FakeUpstream
) -> None:
    set_rule(rules_copy, action="refuse", message="I can't discuss that project.")
    proxy = await make_proxy(rules_dir=rules_copy)
    c = client(proxy)
    resp = await c.chat.completions.create(model="gpt-4o-mini", messages=SECRET)
    assert resp.choices[0].message.content == "I can't discuss that project."
    assert resp.choices[0].finish_reason == "content_filter"
    stream = await c.chat.completions.create(model="gpt-4o-mini", messages=SECRET, stream=True)
    text, finish = "", None
    async for chunk in stream:
        for ch in chunk.choices:
            text += ch.delta.content or ""
            finish = ch.finish_reason or finish
    assert text == "I can't discuss that project." and finish == "content_filter"
    resp2 = await c.responses.create(model="gpt-4o-mini", input="Project Nightjar status?")
    assert resp2.output_text == "I can't discuss that project." and resp2.status == "incomplete"
    assert upstream.requests == []


async def test_monitor_mode_records_but_forwards(
    make_proxy: MakeProxy, rules_copy: Path, upstream: FakeUpstream
) -> None:
    set_mode(rules_copy, "monitor")
    proxy = await make_proxy(rules_dir=rules_copy)
    resp = await client(proxy).chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=SECRET)
    assert resp.headers["x-guardrail-monitor"] == "denylist.internal-codename"
    assert resp.headers["x-guardrail-decision"] == "allow"
    assert resp.parse().choices[0].message.content.startswith("You said:")
    assert len(upstream.requests) == 1


async def test_benign_prompt_passes(proxy: ProxyHandle, upstream: FakeUpstream) -> None:
    resp = await client(proxy).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Tell me about nightjars, the birds."}]
    )
    assert resp.choices[0].message.content.startswith("You said:")


def test_rule_whose_examples_fail_is_rejected_with_file_and_id(rules_copy: Path) -> None:
    set_rule(rules_copy, examples={"match": ["nothing to see here"], "no_match": []})
    with pytest.raises(RuleLoadError) as exc:
        build_ruleset(rules_copy)
    assert exc.value.file.endswith("denylist.yaml")
    assert exc.value.rule_id == "denylist.internal-codename"
    assert "should match" in str(exc.value)


def test_unknown_field_is_rejected_naming_field(rules_copy: Path) -> None:
    set_rule(rules_copy, sevrity="high")
    with pytest.raises(RuleLoadError) as exc:
        build_ruleset(rules_copy)
    assert exc.value.rule_id == "denylist.internal-codename"
    assert exc.value.field == "rules.0.sevrity"
