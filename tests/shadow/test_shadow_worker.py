"""Shadow traffic through the real proxy: sampled share only, off the critical path, recorded."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import openai
import yaml

from proxy import shadow
from proxy.devtools.fake_upstream import FakeUpstream, Reply
from proxy.feedback.metrics import metrics_registry
from tests.conftest import DEV_KEY, ProxyHandle
from tests.shadow.conftest import StartProxy, with_response_guard, write_yaml

ASK = [{"role": "user", "content": "Name a primary colour."}]


def client(proxy: ProxyHandle) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=proxy.base_url, api_key=DEV_KEY, max_retries=0)


def configure(rules_dir: Path, candidate: FakeUpstream, *, sample: float = 1.0, **top: Any) -> Path:
    record = rules_dir.parent / "shadow.jsonl"
    cand = {"id": "next", "model": "gpt-next", "upstream_url": candidate.url, "timeout_s": 5.0}
    cand.update(top.pop("cand_opts", {}))
    write_yaml(
        rules_dir / "shadow.yaml",
        {
            "schema_version": 1,
            "enabled": True,
            "record_path": str(record),
            "similarity": "rapidfuzz",
            **top,
            "candidates": [cand],
            "rules": [{"id": "all-chat", "candidate": "next", "sample": sample}],
        },
    )
    with_response_guard(rules_dir, "shadow", mode="monitor", on_error="allow")
    return record


def records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def calls(proxy: ProxyHandle, outcome: str) -> float:
    value = metrics_registry(proxy.app).get_sample_value(
        "guardrail_shadow_calls_total", {"candidate": "next", "outcome": outcome}
    )
    return value or 0.0


async def test_sampled_request_goes_to_candidate_and_both_answers_are_recorded(
    start_proxy: StartProxy, rules_copy: Path, upstream: FakeUpstream, candidate: FakeUpstream
) -> None:
    record = configure(rules_copy, candidate, sample=1.0)
    proxy = await start_proxy(rules_copy, shadow.install)
    upstream.script(Reply(text="Red is a primary colour.", usage=(10, 6)))
    candidate.script(Reply(text="Blue is a primary colour.", usage=(10, 7)))
    raw = await client(proxy).chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=ASK)
    resp = raw.parse()
    assert resp.choices[0].message.content == "Red is a primary colour."  # the client sees the main answer only
    await proxy.app[shadow.SHADOW_WORKER].drain()
    sent = candidate.requests[-1].json
    assert sent["model"] == "gpt-next" and sent["messages"] == ASK and "stream" not in sent
    assert candidate.requests[-1].headers["Authorization"].startswith("Bearer ")  # the proxy's key, not the app's
    (row,) = records(record)
    assert row["request_id"] == raw.headers["x-guardrail-request-id"]  # linked by the proxy's request id
    assert row["main"]["text"] == "Red is a primary colour." and row["main"]["model"] == "gpt-4o-mini"
    assert row["shadow"]["text"] == "Blue is a primary colour." and row["shadow"]["error"] is None
    assert (row["main"]["completion_tokens"], row["shadow"]["completion_tokens"]) == (6, 7)
    # gpt-4o-mini is priced in rules/pricing.yaml; the candidate's model is not: tokens only.
    assert row["main"]["cost_usd"] > 0 and row["shadow"]["cost_usd"] is None
    assert row["shadow"]["latency_ms"] > 0
    cmp = row["compare"]
    assert cmp["similarity_method"] == "rapidfuzz" and 0.7 < cmp["similarity"] < 1.0
    assert (cmp["chars_main"], cmp["chars_shadow"]) == (24, 25)
    assert calls(proxy, "ok") == 1


async def test_unsampled_requests_never_reach_the_candidate(
    start_proxy: StartProxy, rules_copy: Path, upstream: FakeUpstream, candidate: FakeUpstream
) -> None:
    record = configure(rules_copy, candidate, sample=0.0)
    proxy = await start_proxy(rules_copy, shadow.install)
    for _ in range(3):
        await client(proxy).chat.completions.create(model="gpt-4o-mini", messages=ASK)
    await proxy.app[shadow.SHADOW_WORKER].drain()
    assert len(upstream.requests) == 3
    assert candidate.requests == [] and records(record) == []


async def test_slow_or_failing_candidate_has_no_effect_on_the_client(
    start_proxy: StartProxy, rules_copy: Path, upstream: FakeUpstream, candidate: FakeUpstream
) -> None:
    record = configure(rules_copy, candidate, cand_opts={"timeout_s": 0.5})
    proxy = await start_proxy(rules_copy, shadow.install)
    worker = proxy.app[shadow.SHADOW_WORKER]
    candidate.script(Reply(text="too late", delay_s=2.0), Reply(status=500))
    upstream.script(Reply(text="Green."), Reply(text="Yellow."))
    resp = await client(proxy).chat.completions.create(model="gpt-4o-mini", messages=ASK)
    assert resp.choices[0].message.content == "Green."
    # The client has its whole answer; the candidate is called after, and is still sleeping.
    async with asyncio.timeout(5):
        while True:
            if candidate.requests:
                break
            await asyncio.sleep(0.01)
    assert worker.done == 0 and records(record) == []
    stream = await client(proxy).chat.completions.create(model="gpt-4o-mini", messages=ASK, stream=True)
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == "Yellow."
    await worker.drain()
    rows = records(record)
    assert sorted(r["shadow"]["error"] for r in rows) == ["error: ClientResponseError", "timeout"]
    assert {r["main"]["text"] for r in rows} == {"Green.", "Yellow."}  # the stream's text was collected too
    assert calls(proxy, "timeout") == 1 and calls(proxy, "error") == 1


async def test_full_queue_drops_and_counts(
    start_proxy: StartProxy, rules_copy: Path, upstream: FakeUpstream, candidate: FakeUpstream
) -> None:
    configure(rules_copy, candidate, queue_size=1, concurrency=1)
    proxy = await start_proxy(rules_copy, shadow.install)
    candidate.default = Reply(text="slow", delay_s=3.0)  # far longer than the 4 requests take, even under load
    for _ in range(4):
        await client(proxy).chat.completions.create(model="gpt-4o-mini", messages=ASK)
    worker = proxy.app[shadow.SHADOW_WORKER]
    await worker.drain()
    assert worker.dropped >= 2 and calls(proxy, "dropped") == worker.dropped
    assert len(candidate.requests) == 4 - worker.dropped


async def test_shadow_budget_caps_shadow_calls_only(
    start_proxy: StartProxy, rules_copy: Path, upstream: FakeUpstream, candidate: FakeUpstream
) -> None:
    configure(rules_copy, candidate, budget={"tokens_per_day": 25})
    proxy = await start_proxy(rules_copy, shadow.install)
    upstream.default = Reply(text="ok", usage=(10, 10))
    candidate.default = Reply(text="ok", usage=(10, 10))
    for _ in range(3):
        resp = await client(proxy).chat.completions.create(model="gpt-4o-mini", messages=ASK)
        assert resp.choices[0].message.content == "ok"  # the caller is never refused for shadow spend
        await proxy.app[shadow.SHADOW_WORKER].drain()
    assert len(candidate.requests) == 1
    assert calls(proxy, "ok") == 1 and calls(proxy, "budget_exhausted") == 2


async def test_records_hold_no_raw_pii(
    start_proxy: StartProxy, rules_copy: Path, upstream: FakeUpstream, candidate: FakeUpstream
) -> None:
    record = configure(rules_copy, candidate)
    # The shadow recorder's own redaction, even where the PII guard is not in the pipeline.
    pipeline = yaml.safe_load((rules_copy / "pipeline.yaml").read_text())
    for stage in ("request", "response"):
        pipeline[stage] = [e for e in pipeline[stage] if e["guard"] not in ("pii", "pii_restore")]
    write_yaml(rules_copy / "pipeline.yaml", pipeline)
    proxy = await start_proxy(rules_copy, shadow.install)
    ask = [{"role": "user", "content": "Mail jane.doe@example.com, card 4111 1111 1111 1111"}]
    await client(proxy).chat.completions.create(model="gpt-4o-mini", messages=ask)  # both echo the prompt
    await proxy.app[shadow.SHADOW_WORKER].drain()
    raw = record.read_text()
    assert "jane.doe@example.com" not in raw and "4111" not in raw
    row = records(record)[0]
    assert "<EMAIL>" in row["prompt"] and "<EMAIL>" in row["main"]["text"] and "<NUMBER>" in row["shadow"]["text"]
