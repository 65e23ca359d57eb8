"""Pre-approved answers: the same answer every time, from the proxy, never from the model."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from proxy.context import Principal, RequestContext, Route
from proxy.devtools.fake_upstream import FakeUpstream
from proxy.guards.approved import ApprovedGuard, build, load_answers
from proxy.pipeline.guard import BuildContext
from proxy.rules.loader import RuleLoadError
from tests.conftest import RULES
from tests.guards.output.harness import GuardedProxy, enable, services
from tests.guards.output.harness import guarded_proxy as guarded_proxy
from tests.guards.output.harness import output_guards_registered as output_guards_registered
from tests.guards.output.streams import chat_stream, client

HOURS = "Our support team is available Monday to Friday, 8:00-18:00 CET, at support@example.com."


class Seen:
    """An observer that keeps each finished request's context (what metrics and budgets see)."""

    def __init__(self) -> None:
        self.ctxs: list[RequestContext] = []

    def request_finished(self, ctx: RequestContext) -> None:
        self.ctxs.append(ctx)


def ctx_for(text: str, key: str = "dev", model: str = "gpt-4o-mini") -> RequestContext:
    body = {"model": model, "messages": [{"role": "user", "content": text}]}
    return RequestContext("r", Route.CHAT, Principal(key, "dev"), body, b"", requested_model=model)


@pytest.fixture(scope="module")
def shipped() -> ApprovedGuard:
    return build(BuildContext(RULES, services=services()))


async def test_every_rule_example_matches_its_own_answer_and_no_match_examples_do_not(shipped: ApprovedGuard) -> None:
    for ans in shipped.answers:
        for text in ans.examples.match:
            found = await shipped.find(text, ctx_for(text))
            assert found is not None and found.answer.id == ans.id, (ans.id, text)
        for text in ans.examples.no_match:
            found = await shipped.find(text, ctx_for(text))
            assert found is None or found.answer.id != ans.id, (ans.id, text, found)


async def test_approved_question_answered_identically_100_times_without_upstream(
    guarded_proxy: GuardedProxy,
    rules_copy: Path,
    upstream: FakeUpstream,
) -> None:
    enable(rules_copy, request=["approved"])
    proxy = await guarded_proxy(rules_copy)
    seen = Seen()
    proxy.runtime.observers.append(seen)
    c = client(proxy)
    question = [{"role": "user", "content": "When can I contact customer support?"}]
    for _ in range(100):
        raw = await c.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=question)
        resp = raw.parse()
        assert resp.choices[0].message.content == HOURS and resp.choices[0].finish_reason == "stop"
        assert raw.headers["x-guardrail-approved-id"] == "approved.support-hours"
        assert raw.headers["x-guardrail-approved-version"] == "2"
    for _ in range(100):
        got = await chat_stream(proxy, question)
        assert got.text == HOURS and got.finish == "stop"
    assert upstream.requests == []
    assert len(seen.ctxs) == 200
    assert all(x.upstream_calls == 0 and x.usage is None and x.status == 200 for x in seen.ctxs)


async def test_responses_api_and_non_matching_questions(
    guarded_proxy: GuardedProxy,
    rules_copy: Path,
    upstream: FakeUpstream,
) -> None:
    enable(rules_copy, request=["approved"])
    proxy = await guarded_proxy(rules_copy)
    c = client(proxy)
    resp = await c.responses.create(model="gpt-4o-mini", input="I forgot my password, what should I do?")
    assert resp.output_text.startswith("Open https://example.com/account/reset") and resp.status == "completed"
    other = await c.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "What are the opening hours of the Louvre?"}]
    )
    assert other.choices[0].message.content == "You said: What are the opening hours of the Louvre?"
    assert len(upstream.requests) == 1


async def test_scope_limits_an_answer_to_listed_keys_and_models(rules_copy: Path) -> None:
    path = rules_copy / "approved" / "support.yaml"
    data = yaml.safe_load(path.read_text())
    data["answers"][0]["scope"] = {"keys": ["support-bot"], "models": ["gpt-4o-mini"]}
    path.write_text(yaml.safe_dump(data))
    guard = build(BuildContext(rules_copy, services=services()))
    q = "What are your support hours?"
    assert await guard.check(ctx_for(q, key="dev")) == await guard.check(ctx_for("unrelated text"))
    hit = await guard.check(ctx_for(q, key="support-bot"))
    assert getattr(hit, "text", None) == HOURS
    assert (await guard.check(ctx_for(q, key="support-bot", model="gpt-4o"))).__class__.__name__ == "Allow"


async def test_without_an_embedder_fuzzy_matching_still_answers() -> None:
    guard = build(BuildContext(RULES, services=None))
    assert guard.vectors is None
    found = await guard.find("what are your support hours???")
    assert found is not None and found.layer == "fuzzy" and found.answer.id == "approved.support-hours"
    assert await guard.find("When can I contact customer support?") is None  # needs the semantic layer


def test_duplicate_ids_and_unknown_fields_are_rejected_with_file_and_id(rules_copy: Path) -> None:
    src = rules_copy / "approved" / "support.yaml"
    (rules_copy / "approved" / "zz-copy.yaml").write_text(src.read_text())
    with pytest.raises(RuleLoadError) as exc:
        load_answers(rules_copy / "approved")
    assert exc.value.file.endswith("zz-copy.yaml") and exc.value.rule_id == "approved.support-hours"
    (rules_copy / "approved" / "zz-copy.yaml").unlink()
    data = yaml.safe_load(src.read_text())
    data["answers"][1]["treshold"] = 0.5
    src.write_text(yaml.safe_dump(data))
    with pytest.raises(RuleLoadError) as exc:
        load_answers(rules_copy / "approved")
    assert exc.value.rule_id == "approved.password-reset" and exc.value.field == "answers.1.treshold"
