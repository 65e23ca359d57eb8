"""Known-bad answers are replaced by their correction, whole or streamed; good ones pass."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from proxy.context import Principal, RequestContext, Route
from proxy.devtools.fake_upstream import FakeUpstream, Reply
from proxy.guards.corrections import CorrectionsGuard, build, load_corrections
from proxy.pipeline.config import GuardEntry
from proxy.pipeline.guard import BuildContext
from proxy.rules.loader import RuleLoadError
from proxy.streaming.channel import OutputChannel, Watch
from proxy.verdicts import Substitute
from tests.conftest import RULES
from tests.guards.output.harness import GuardedProxy, enable, services
from tests.guards.output.harness import guarded_proxy as guarded_proxy
from tests.guards.output.harness import output_guards_registered as output_guards_registered
from tests.guards.output.streams import chat_stream, client

BAD = "Good news: you can return any item within 90 days for a full refund, no receipt needed."
CORRECT = (
    "Items can be returned within 30 days of delivery with the receipt or order number; "
    "refunds go to the original payment method within 5 business days."
)
Q = [{"role": "user", "content": "What is your return policy?"}]


def ctx() -> RequestContext:
    return RequestContext("r", Route.CHAT, Principal("dev", "dev"), {"model": "gpt-4o-mini", "messages": Q}, b"")


@pytest.fixture(scope="module")
def shipped() -> CorrectionsGuard:
    return build(BuildContext(RULES, services=services()))


async def judge(guard: CorrectionsGuard, text: str) -> Substitute | None:
    scanner = guard.open(ctx())
    assert scanner is not None
    ch = OutputChannel(ctx(), [Watch(GuardEntry(guard="corrections"), scanner)], window=0)
    _, ending = ch.push(text)
    if ending is None:
        _, ending = await ch.close()
    assert ending is None or isinstance(ending, Substitute)
    return ending


async def test_every_rule_example_is_caught_and_no_match_examples_pass(shipped: CorrectionsGuard) -> None:
    for rule in shipped.rules:
        for text in rule.examples.match:
            got = await judge(shipped, text)
            assert got is not None and got.hits[0].rule_id == rule.id, (rule.id, text)
        for text in rule.examples.no_match:
            got = await judge(shipped, text)
            assert got is None or got.hits[0].rule_id != rule.id, (rule.id, text)


async def test_whole_answer_is_replaced_by_the_correction_with_its_id(
    guarded_proxy: GuardedProxy, rules_copy: Path, upstream: FakeUpstream
) -> None:
    enable(rules_copy, response=["corrections"])
    proxy = await guarded_proxy(rules_copy)
    upstream.script(Reply(text=BAD), Reply(text="Returns are fine for a whole year after you buy, receipt or not."))
    raw = await client(proxy).chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=Q)
    assert raw.parse().choices[0].message.content == CORRECT
    assert raw.headers["x-guardrail-correction-id"] == "correction.return-policy"
    assert raw.headers["x-guardrail-decision"] == "substitute"
    # A paraphrase no fuzzy match would catch: the semantic layer does.
    para = await client(proxy).chat.completions.create(model="gpt-4o-mini", messages=Q)
    assert para.choices[0].message.content == CORRECT


@pytest.mark.parametrize("hold", ["keyword", "sentence"])
async def test_streamed_bad_claim_never_reaches_the_client(
    guarded_proxy: GuardedProxy, rules_copy: Path, upstream: FakeUpstream, hold: str
) -> None:
    enable(rules_copy, response=["corrections"], window=0, options={"hold": hold})
    proxy = await guarded_proxy(rules_copy)
    chunks = [BAD[i : i + 5] for i in range(0, len(BAD), 5)] + [" Anything else?"] * 10
    upstream.script(Reply(chunks=chunks, chunk_delay_s=0.005))
    got = await chat_stream(proxy, Q)
    assert got.text.endswith(CORRECT) and got.finish == "stop"
    assert "90 days" not in got.text and "return any" not in got.text
    # keyword mode releases what came before the first keyword; sentence mode nothing at all.
    assert got.text == (CORRECT if hold == "sentence" else "Good news: you " + CORRECT)


async def test_good_answers_stream_unchanged(
    guarded_proxy: GuardedProxy, rules_copy: Path, upstream: FakeUpstream
) -> None:
    enable(rules_copy, response=["corrections"], window=0)
    proxy = await guarded_proxy(rules_copy)
    upstream.script(Reply(text=CORRECT + " Anything else I can help with?"))
    got = await chat_stream(proxy, Q)
    assert got.text == CORRECT + " Anything else I can help with?" and got.finish == "stop"


def test_rules_need_a_reason_and_unique_ids(rules_copy: Path) -> None:
    path = rules_copy / "corrections" / "policies.yaml"
    data = yaml.safe_load(path.read_text())
    del data["corrections"][1]["reason"]
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(RuleLoadError) as exc:
        load_corrections(rules_copy / "corrections")
    assert exc.value.rule_id == "correction.free-shipping" and exc.value.field == "corrections.1.reason"
