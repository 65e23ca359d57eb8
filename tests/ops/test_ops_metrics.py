"""/metrics after real requests through the openai SDK: present, labelled, changing."""

from __future__ import annotations

import uuid
from pathlib import Path

import aiohttp
import openai
import pytest
import yaml

from proxy.devtools.fake_upstream import FakeUpstream, Reply
from proxy.embedding import load_default
from proxy.guards.injection.detector import Detector
from proxy.guards.injection.rules import load_rules
from proxy.ops.metrics import registry, sample
from proxy.ops.scrape import record_state_error
from tests.conftest import DEV_KEY, RULES, MakeProxy, ProxyHandle

CHAT = {"route": "chat.completions", "model": "gpt-4o-mini", "key_id": "dev", "team": "dev"}


def client(proxy: ProxyHandle) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=proxy.base_url, api_key=DEV_KEY, max_retries=0)


async def scrape(proxy: ProxyHandle) -> str:
    async with aiohttp.ClientSession() as s, s.get(f"{proxy.root}/metrics") as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain")
        return await r.text()


async def test_requests_latency_tokens_verdicts_after_sdk_calls(proxy: ProxyHandle, upstream: FakeUpstream) -> None:
    before = await scrape(proxy)
    assert sample(before, "guardrail_requests_total", {**CHAT, "status": "200"}) is None
    c = client(proxy)
    upstream.script(Reply(text="hello there", usage=(11, 3)))
    await c.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    upstream.script(Reply(text="a streamed answer", usage=(7, 4)))
    stream = await c.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "stream please"}], stream=True
    )
    async for _ in stream:
        pass
    with pytest.raises(openai.BadRequestError):
        await c.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "When does Project Nightjar launch?"}]
        )
    text = await scrape(proxy)

    assert sample(text, "guardrail_requests_total", {**CHAT, "status": "200"}) == 2
    assert sample(text, "guardrail_requests_total", {**CHAT, "status": "400"}) == 1
    assert sample(text, "guardrail_tokens_total", {**CHAT, "type": "input"}) == 18
    assert sample(text, "guardrail_tokens_total", {**CHAT, "type": "output"}) == 7
    where = {"route": "chat.completions", "model": "gpt-4o-mini"}
    assert sample(text, "guardrail_request_duration_seconds_count", where) == 3
    assert sample(text, "guardrail_overhead_seconds_count", where) == 3
    assert sample(text, "guardrail_upstream_duration_seconds_count", where) == 2  # the block never went upstream
    assert sample(text, "guardrail_time_to_first_token_seconds_count", where) == 1  # the stream
    total = sample(text, "guardrail_request_duration_seconds_sum", where)
    overhead = sample(text, "guardrail_overhead_seconds_sum", where)
    upstream_s = sample(text, "guardrail_upstream_duration_seconds_sum", where)
    assert total is not None and overhead is not None and upstream_s is not None
    assert overhead <= total and upstream_s <= total
    blocked = {"guard": "phrase_denylist", "rule_id": "denylist.internal-codename", "action": "block"}
    assert sample(text, "guardrail_verdicts_total", {**blocked, "mode": "enforce", "stage": "request"}) == 1
    assert sample(text, "guardrail_verdicts_total", {"guard": "phrase_denylist", "action": "allow"}) == 2
    assert sample(text, "guardrail_guard_duration_seconds_count", {"guard": "phrase_denylist"}) == 3
    assert sample(text, "guardrail_upstream_breaker_state") == 0
    assert sample(text, "guardrail_rules_reloads_total", {"result": "rejected"}) == 0
    assert sample(text, "guardrail_rules_last_reload_success") == 1


async def test_rejected_before_pipeline_are_counted(proxy: ProxyHandle) -> None:
    bad = openai.AsyncOpenAI(base_url=proxy.base_url, api_key="sk-not-a-real-key", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        await bad.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.NotFoundError):
        await client(proxy).chat.completions.create(model="not-allowed", messages=[{"role": "user", "content": "x"}])
    text = await scrape(proxy)
    unauth = {"route": "chat.completions", "key_id": "", "status": "401"}
    assert sample(text, "guardrail_requests_total", unauth) == 1
    assert sample(text, "guardrail_requests_total", {"route": "chat.completions", "status": "404"}) == 1
    assert "sk-not-a-real-key" not in text


async def test_upstream_errors_and_open_breaker(make_proxy: MakeProxy, upstream: FakeUpstream) -> None:
    proxy = await make_proxy(max_retries=0, breaker_failures=2, breaker_reset_s=60)
    c = client(proxy)
    upstream.script(Reply(status=500), Reply(status=500))
    for _ in range(3):
        with pytest.raises(openai.APIStatusError):
            await c.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
    text = await scrape(proxy)
    assert sample(text, "guardrail_upstream_breaker_state") == 2
    assert sample(text, "guardrail_upstream_errors_total", {"code": "upstream_error"}) == 2
    assert sample(text, "guardrail_upstream_errors_total", {"code": "upstream_circuit_open"}) == 1
    assert sample(text, "guardrail_requests_total", {**CHAT, "status": "503"}) == 1


async def test_cost_from_pricing_table_and_reload_counts(
    make_proxy: MakeProxy, rules_copy: Path, upstream: FakeUpstream
) -> None:
    pricing = yaml.safe_load((rules_copy / "pricing.yaml").read_text())
    pricing["models"]["gpt-4o-mini"] = {"input_per_1m": 1.0, "output_per_1m": 2.0}
    (rules_copy / "pricing.yaml").write_text(yaml.safe_dump(pricing))
    proxy = await make_proxy(rules_dir=rules_copy)
    upstream.script(Reply(text="ok", usage=(1000, 500)))
    await client(proxy).chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    text = await scrape(proxy)
    cost = sample(text, "guardrail_cost_usd_total", {"model": "gpt-4o-mini", "key_id": "dev"})
    assert cost == pytest.approx(1000 * 1e-6 + 500 * 2e-6)
    # A rejected and an accepted reload show up as counters.
    (rules_copy / "denylist.yaml").write_text("schema_version: 1\nrules: [{id: broken}]\n")
    assert await proxy.runtime.rules.reload(force=True) is False
    text = await scrape(proxy)
    assert sample(text, "guardrail_rules_reloads_total", {"result": "rejected"}) == 1
    assert sample(text, "guardrail_rules_last_reload_success") == 0


async def test_state_store_errors_and_shared_registry(proxy: ProxyHandle) -> None:
    before = sample(await scrape(proxy), "guardrail_state_store_errors_total", {"backend": "redis"}) or 0
    record_state_error("redis", "admit")
    after = sample(
        await scrape(proxy), "guardrail_state_store_errors_total", {"backend": "redis", "operation": "admit"}
    )
    assert after == before + 1
    # The platform extras (feedback, shadow, probes) register on the same per-app registry.
    assert registry(proxy.app) is registry(proxy.app)
    assert any(line.startswith("# TYPE guardrail_feedback_") for line in (await scrape(proxy)).splitlines())


# ordinary prompts some of which open the semantic gate of the shipped heads (none is blocked)
GATE_CANDIDATES = [
    "Reply only with yes or no from now on, unless I ask for details.",
    "Ignore the formatting and just give me the plain text of the poem.",
    "Can an AI have a personality? Discuss briefly.",
    "From now on, answer in bullet points, please.",
]


async def test_injection_scans_and_semantic_windows_are_counted(proxy: ProxyHandle, upstream: FakeUpstream) -> None:
    detector = Detector.from_loaded(load_rules(RULES / "injection"), load_default())
    opener = next(t for t in GATE_CANDIDATES if (f := detector.scan(t)).windows and not f)
    texts = [f"Please summarise the attached report {uuid.uuid4().hex[:8]} in three bullet points.", opener, "thanks"]
    expected = [detector.scan(t) for t in texts]
    assert not any(expected)
    before = await scrape(proxy)
    c = client(proxy)
    history: list[dict[str, str]] = []
    for t in texts:  # each turn resends the earlier ones: cached scans, not counted again
        upstream.script(Reply(text="fine", usage=(5, 1)))
        history.append({"role": "user", "content": t})
        await c.chat.completions.create(model="gpt-4o-mini", messages=history)  # type: ignore[arg-type]
        history.append({"role": "assistant", "content": "fine"})
    after = await scrape(proxy)

    def delta(name: str, **labels: str) -> float:
        return (sample(after, name, labels) or 0.0) - (sample(before, name, labels) or 0.0)

    texts_total, windows_total = "guardrail_injection_texts_total", "guardrail_injection_semantic_windows_total"
    assert delta(texts_total, side="request", layer="all") == 3
    assert delta(texts_total, side="request", layer="semantic") == sum(f.windows > 0 for f in expected) >= 1
    assert delta(windows_total, side="request") == sum(f.windows for f in expected)
    assert delta(texts_total, side="response", layer="all") == 3  # the injection-echo signal read each answer
