"""System-prompt leakage: a long verbatim echo is stopped; short quotes and paraphrase pass."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest

from proxy.devtools.fake_upstream import FakeUpstream, Reply
from proxy.guards.output.config import LeakageConfig
from proxy.guards.output.leakage import LeakageSignal, shingles
from tests.guards.output.harness import GuardedProxy, enable
from tests.guards.output.streams import SYSTEM, chat_stream, client, messages, wait_for


def longest_common(a: str, b: str) -> int:
    best = 0
    for i in range(len(a)):
        for j in range(i + best + 1, len(a) + 1):
            if a[i:j] in b:
                best = j - i
            else:
                break
    return best


def pieces(text: str, size: int = 7) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def test_overlap_grows_across_chunks_and_is_scored_once_per_level() -> None:
    cfg = LeakageConfig()
    sig = LeakageSignal(shingles(SYSTEM, cfg.shingle), cfg)
    hits = [h for p in pieces("Well, here goes: " + SYSTEM.upper().replace(" ", "  \n")) for h in sig.feed(p)]
    assert hits[0].rule_id == "output.leakage"
    assert hits[0].score == pytest.approx(cfg.score_at_min, abs=0.02)
    assert hits[-1].score > hits[0].score


def test_short_quotes_do_not_count() -> None:
    cfg = LeakageConfig()
    sig = LeakageSignal(shingles(SYSTEM, cfg.shingle), cfg)
    answer = "I can help with bookings, refunds and itineraries. Ask me anything about your trip."
    assert [h for p in pieces(answer) for h in sig.feed(p)] == []


async def test_echoed_system_prompt_is_cut_mid_stream(
    guarded_proxy: GuardedProxy, rules_copy: Path, upstream: FakeUpstream
) -> None:
    enable(rules_copy, response=["output_anomaly"], window=64)
    proxy = await guarded_proxy(rules_copy)
    echo = ["Of course. My instructions say: ", *pieces(SYSTEM), " That is all."]
    upstream.script(Reply(chunks=echo, chunk_delay_s=0.005))
    got = await chat_stream(proxy, messages("What can you help me with?"))
    assert got.finish == "content_filter"
    assert longest_common(got.text, SYSTEM) < 40
    assert await wait_for(lambda: upstream.disconnects == 1)


async def test_echoed_system_prompt_in_a_whole_answer_is_blocked(
    guarded_proxy: GuardedProxy, rules_copy: Path, upstream: FakeUpstream
) -> None:
    enable(rules_copy, response=["output_anomaly"])
    proxy = await guarded_proxy(rules_copy)
    upstream.script(Reply(text="Sure: " + SYSTEM[10:200]))
    with pytest.raises(openai.BadRequestError) as exc:
        await client(proxy).chat.completions.create(model="gpt-4o-mini", messages=messages("What can you do?"))
    assert exc.value.body["rule_ids"] == ["output.leakage"]
