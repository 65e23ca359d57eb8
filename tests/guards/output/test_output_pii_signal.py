"""Output PII: new personal data in an answer is scored; the user's own values and pseudonyms are not."""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Any

import pytest
import yaml

from proxy.context import Principal, RequestContext, Route
from proxy.devtools.fake_upstream import FakeUpstream, Reply
from proxy.guards.output.config import PiiSignalConfig
from proxy.guards.output.pii_signal import Known, PiiSignals
from proxy.guards.output.score import build
from proxy.guards.pii.guard import STATE_KEY, PiiGuard, PiiState
from proxy.guards.pii.guard import build as build_pii
from proxy.guards.pii.restore import build as build_restore
from proxy.guards.pii.vault import Vault
from proxy.pipeline.config import GuardEntry
from proxy.pipeline.guard import BuildContext
from proxy.rules.loader import RuleLoadError
from proxy.streaming.channel import OutputChannel, Watch
from proxy.verdicts import Flag
from tests.conftest import RULES, ProxyHandle
from tests.guards.output.harness import GuardedProxy, enable, services
from tests.guards.output.streams import chat_stream, client, messages

MAIL, PHONE = "maria.k@fastmail.com", "+1 415 555 0199"
USER = f"Hi, I'm Maria. Reach me at {MAIL} or {PHONE} about my booking."
NEW_MAIL, NEW_PHONE = "dispatch@northwind-logistics.com", "+44 20 7946 0321"
LEAKY = f"Sure. Our dispatcher can help: write to {NEW_MAIL} or call {NEW_PHONE}."


class Seen:
    """Keeps each finished request's context (what logs and metrics see)."""

    def __init__(self) -> None:
        self.ctxs: list[RequestContext] = []

    def request_finished(self, ctx: RequestContext) -> None:
        self.ctxs.append(ctx)


async def anomaly_proxy(guarded_proxy: GuardedProxy, rules_copy: Path) -> tuple[ProxyHandle, Seen]:
    """The proxy with the PII guards and only ``output_anomaly`` on the response side, observed."""
    enable(rules_copy, response=["output_anomaly"])
    proxy = await guarded_proxy(rules_copy)
    seen = Seen()
    proxy.runtime.observers.append(seen)
    return proxy, seen


def pii_rules(ctx: RequestContext) -> list[str]:
    return [h.rule_id for d in ctx.decisions for h in d.verdict.hits if h.rule_id.startswith("output.pii")]


@functools.cache
def signals() -> PiiSignals:
    # A generous timeout: the machine running the tests may be busy (the shipped one is 500 ms).
    return PiiSignals.create(PiiSignalConfig(timeout_ms=5000), BuildContext(RULES, services=services()))


@functools.cache
def pii_guard() -> PiiGuard:
    return build_pii(BuildContext(RULES, services=services()))


async def request_ctx(user: str = USER, stream: bool = False) -> RequestContext:
    """A context the real ``pii`` request guard has seen (its state holds the request's values)."""
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": user}]}
    ctx = RequestContext("r1", Route.CHAT, Principal("dev", "dev"), body, b"", stream=stream)
    await pii_guard().check(ctx)
    assert isinstance(ctx.extras.get(STATE_KEY), PiiState)
    return ctx


async def test_new_email_and_phone_are_evidence_without_their_values() -> None:
    sig = signals().open(await request_ctx())
    assert sig is not None
    hits = await sig.finish(LEAKY)
    assert sorted(h.rule_id for h in hits) == ["output.pii.EMAIL_ADDRESS", "output.pii.PHONE_NUMBER"]
    for h in hits:
        assert h.score == 0.3 and h.layer == "pii" and h.detail.startswith("new=1 confidence=")
        assert NEW_MAIL not in h.detail and "7946" not in h.detail
    mail = next(h for h in hits if h.rule_id.endswith("EMAIL_ADDRESS"))
    assert mail.span is not None and LEAKY[mail.span[0] : mail.span[1]] == NEW_MAIL


async def test_the_users_own_values_pseudonyms_and_allow_listed_ones_are_not_new() -> None:
    ctx = await request_ctx()
    sig = signals().open(ctx)
    assert sig is not None
    own = [
        f"I will write to {MAIL.upper()} and call (415) 555-0199.",  # case and format differ
        "Noted: <EMAIL_ADDRESS_1> and <PHONE_NUMBER_1>.",  # pseudonyms pii_restore puts back
        "For anything else, support@example.com is there.",  # allow-listed in pii.yaml
        "Our office opens at 9 and the booking ref is AB12.",
    ]
    for text in own:
        assert await sig.finish(text) == [], text


def test_known_values_match_by_digits_and_country_prefix_but_not_by_a_short_tail() -> None:
    state = PiiState(Vault(), {"+1 415 555 0199", "maria.k@fastmail.com"})
    known = Known.of(state)
    assert "415.555.0199" in known and "001 415 555 0199" in known and "MARIA.K@fastmail.com" in known
    assert "55 0199" not in known and "+1 415 555 0198" not in known and "maria@fastmail.com" not in known
    assert "4155550199" not in repr(known)


async def test_per_entity_scores_and_distinct_values_are_counted() -> None:
    cfg = PiiSignalConfig(entity_scores={"EMAIL_ADDRESS": 0.5}, timeout_ms=5000)
    owner = PiiSignals.create(cfg, BuildContext(RULES, services=services()))
    sig = owner.open(await request_ctx())
    assert sig is not None
    hits = await sig.finish(f"Mail {NEW_MAIL}, or {NEW_MAIL.upper()}, or ops@northwind-logistics.com.")
    assert [(h.rule_id, h.score, h.detail.split()[0]) for h in hits] == [("output.pii.EMAIL_ADDRESS", 0.5, "new=2")]


def test_signal_is_off_without_the_pii_request_guard_and_for_requests_it_did_not_see(rules_copy: Path) -> None:
    ctx = RequestContext("r", Route.CHAT, Principal("dev", "dev"), {"model": "m", "messages": []}, b"")
    assert signals().open(ctx) is None  # no PII state: what the request held is unknown
    path = rules_copy / "pipeline.yaml"
    data = yaml.safe_load(path.read_text())
    data["request"] = [e for e in data["request"] if e["guard"] != "pii"]
    path.write_text(yaml.safe_dump(data))
    off = PiiSignals.create(PiiSignalConfig(), BuildContext(rules_copy))
    assert off.runtime is None and off.unavailable == "the pipeline runs no pii request guard"
    assert (
        PiiSignals.create(PiiSignalConfig(enabled=False), BuildContext(RULES)).unavailable == "disabled in output.yaml"
    )


def test_an_unknown_entity_in_entity_scores_is_rejected_naming_the_field(rules_copy: Path) -> None:
    path = rules_copy / "output.yaml"
    data = yaml.safe_load(path.read_text())
    data["pii"]["entity_scores"]["CREDIT_CARDS"] = 0.5
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(RuleLoadError) as exc:
        build(BuildContext(rules_copy))
    assert exc.value.file.endswith("output.yaml") and exc.value.field == "pii.entity_scores.CREDIT_CARDS"


async def test_a_failing_analysis_adds_no_evidence(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    rt = signals().runtime
    assert rt is not None
    owner = PiiSignals(signals().cfg, dataclasses.replace(rt), signals().entities)

    async def broken(texts: list[str], entities: list[str] | None = None) -> Any:
        raise RuntimeError(f"analyzer down near {NEW_MAIL}")  # the error text carries the value

    monkeypatch.setattr(owner.runtime, "analyze", broken)
    sig = owner.open(await request_ctx())
    assert sig is not None
    assert await sig.finish(LEAKY) == []
    assert "analysis failed" in caplog.text
    for record in caplog.records:  # the message and every structured field
        assert NEW_MAIL not in record.getMessage()
        assert all(NEW_MAIL not in str(v) for v in vars(record).values())


async def test_stream_chunks_cost_nothing_and_finish_reuses_pii_restores_analysis() -> None:
    """Constant per-chunk cost: no analysis while chunks arrive; at the end one cache hit."""
    ctx = await request_ctx(stream=True)
    restore = build_restore(BuildContext(RULES, services=services()))
    anomaly = build(BuildContext(RULES, services=services()))
    watches = []
    for name, guard in (("pii_restore", restore), ("output_anomaly", anomaly)):
        scanner = guard.open(ctx)
        assert scanner is not None
        watches.append(Watch(GuardEntry(guard=name, timeout_ms=5000), scanner))
    ch = OutputChannel(ctx, watches, 64)
    engine = signals().runtime.engine  # type: ignore[union-attr]
    text = "Noted, <EMAIL_ADDRESS_1>. " + LEAKY + " Anything else? " * 30
    before = dict(engine.stats)
    for i in range(0, len(text), 4):
        _, ending = ch.push(text[i : i + 4])
        assert ending is None
    assert engine.stats == before  # nothing analysed per chunk
    _, ending = await ch.close()
    assert ending is None
    assert engine.stats["misses"] - before["misses"] <= 1  # pii_restore's pass (unless already cached)
    assert engine.stats["hits"] - before["hits"] >= 1  # the signal's pass: served from the cache
    flags = [d.verdict for d in ctx.decisions if d.verdict.guard == "output_anomaly"]
    assert isinstance(flags[-1], Flag) and "output score 0.51" in flags[-1].message


async def test_non_stream_new_pii_flags_with_score_header_while_pii_restore_redacts(
    guarded_proxy: GuardedProxy, rules_copy: Path, upstream: FakeUpstream
) -> None:
    proxy, _ = await anomaly_proxy(guarded_proxy, rules_copy)
    upstream.script(Reply(text=LEAKY))
    raw = await client(proxy).chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=messages(USER, system=None)
    )
    content = raw.parse().choices[0].message.content or ""
    assert NEW_MAIL not in content and "<EMAIL_ADDRESS>" in content  # pii_restore acted on the values
    assert content.startswith("Sure. Our dispatcher")  # the signal did not refuse the answer
    rules = raw.headers["x-guardrail-rules"].split(",")
    assert {"output.pii.EMAIL_ADDRESS", "output.pii.PHONE_NUMBER", "pii.output.EMAIL_ADDRESS"} <= set(rules)
    assert raw.headers["x-guardrail-output-score"] == "0.51"


async def test_an_answer_repeating_only_the_users_restored_values_is_not_scored(
    guarded_proxy: GuardedProxy, rules_copy: Path, upstream: FakeUpstream
) -> None:
    proxy, seen = await anomaly_proxy(guarded_proxy, rules_copy)
    upstream.script(Reply(text="Thanks <PERSON_1>, I will write to <EMAIL_ADDRESS_1> and call <PHONE_NUMBER_1>."))
    raw = await client(proxy).chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=messages(USER, system=None)
    )
    content = raw.parse().choices[0].message.content or ""
    assert content.startswith(f"Thanks Maria, I will write to {MAIL} and call ") and content.endswith("415 555 0199.")
    assert "x-guardrail-output-score" not in raw.headers
    assert "output.pii" not in raw.headers.get("x-guardrail-rules", "")
    got = await chat_stream(proxy, messages(USER, system=None))  # echo: "You said: <the request>"
    assert got.text == f"You said: {USER}" and got.finish == "stop"
    assert len(seen.ctxs) == 2 and all(pii_rules(c) == [] for c in seen.ctxs)


async def test_stream_with_new_pii_is_flagged_and_finishes(
    guarded_proxy: GuardedProxy, rules_copy: Path, upstream: FakeUpstream
) -> None:
    proxy, seen = await anomaly_proxy(guarded_proxy, rules_copy)
    upstream.script(Reply(chunks=["Sure. Write to dispatch@north", "wind-logistics.com", " for help. ", "Bye."]))
    got = await chat_stream(proxy, messages(USER, system=None))
    assert got.finish == "stop" and got.text.endswith("Bye.")
    (ctx,) = seen.ctxs
    assert pii_rules(ctx) == ["output.pii.EMAIL_ADDRESS"]
    verdict = next(d.verdict for d in ctx.decisions if d.verdict.guard == "output_anomaly")
    assert isinstance(verdict, Flag) and verdict.message == "output score 0.30"


@pytest.mark.parametrize("stream", [False, True])
async def test_output_yaml_decides_the_action_refuse(
    guarded_proxy: GuardedProxy, rules_copy: Path, upstream: FakeUpstream, stream: bool
) -> None:
    path = rules_copy / "output.yaml"
    data = yaml.safe_load(path.read_text())
    data["pii"]["score"] = 0.6  # two kinds of new data: 0.84, refuse (block is at 0.9)
    path.write_text(yaml.safe_dump(data))
    proxy, _ = await anomaly_proxy(guarded_proxy, rules_copy)
    upstream.script(Reply(text=LEAKY))
    refusal = data["actions"][1]["message"]
    if stream:
        # Judged at the end of a stream: what already left stays, the rest is replaced.
        got = await chat_stream(proxy, messages(USER, system=None))
        assert got.finish == "content_filter" and got.text.endswith(refusal)
        return
    resp = await client(proxy).chat.completions.create(model="gpt-4o-mini", messages=messages(USER, system=None))
    assert resp.choices[0].message.content == refusal and resp.choices[0].finish_reason == "content_filter"
