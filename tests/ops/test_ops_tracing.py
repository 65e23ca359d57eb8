"""OpenTelemetry spans (GenAI conventions) for requests made with the openai SDK."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

import openai
import pytest
import pytest_asyncio
from aiohttp import web

pytest.importorskip("opentelemetry.sdk", reason="tracing needs opentelemetry-sdk (the otel extra)")

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from proxy.app import create_app
from proxy.devtools.fake_upstream import FakeUpstream, Reply
from proxy.ops import tracing
from proxy.runtime import Settings
from proxy.upstream.client import UpstreamSettings
from tests.conftest import DEV_KEY, RULES, UPSTREAM_KEY

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PROMPT = "Tell me about the weather on Saturn"


@dataclass
class Traced:
    base_url: str
    spans: InMemorySpanExporter

    def client(self, key: str = DEV_KEY) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(base_url=self.base_url, api_key=key, max_retries=0)

    def finished(self) -> list[ReadableSpan]:
        out = list(self.spans.get_finished_spans())
        self.spans.clear()
        return out


@pytest_asyncio.fixture(loop_scope="session")
async def traced(upstream: FakeUpstream) -> AsyncIterator[Traced]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    settings = Settings(
        rules_dir=RULES.resolve(), upstream=UpstreamSettings(url=upstream.url, api_key=UPSTREAM_KEY, max_retries=0)
    )
    app = create_app(settings)
    assert tracing.install(app, provider) is not None
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield Traced(f"http://127.0.0.1:{port}/v1", exporter)
    await runner.cleanup()


def by_kind(spans: list[ReadableSpan], kind: SpanKind) -> list[ReadableSpan]:
    return [s for s in spans if s.kind is kind]


async def test_chat_spans_follow_genai_conventions(traced: Traced, upstream: FakeUpstream) -> None:
    upstream.script(Reply(text="Windy.", usage=(11, 3)))
    await traced.client().chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": PROMPT}],
        max_tokens=50,
        temperature=0.2,
        extra_headers={"traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01"},
    )
    spans = traced.finished()
    (server,) = by_kind(spans, SpanKind.SERVER)
    (client,) = by_kind(spans, SpanKind.CLIENT)
    assert format(server.context.trace_id, "032x") == TRACE_ID  # continues the caller's trace
    assert server.parent is not None and format(server.parent.span_id, "016x") == "00f067aa0ba902b7"
    assert client.parent is not None and client.parent.span_id == server.context.span_id
    assert server.name == "POST /v1/chat/completions" and client.name == "chat gpt-4o-mini"
    a = dict(client.attributes or {})
    assert a["gen_ai.system"] == "openai" and a["gen_ai.provider.name"] == "openai"
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.request.model"] == "gpt-4o-mini" and a["gen_ai.response.model"] == "gpt-4o-mini"
    assert a["gen_ai.usage.input_tokens"] == 11 and a["gen_ai.usage.output_tokens"] == 3
    assert a["gen_ai.request.max_tokens"] == 50 and a["gen_ai.request.temperature"] == 0.2
    assert a["server.address"] == "127.0.0.1"
    s = dict(server.attributes or {})
    assert s["http.response.status_code"] == 200 and s["guardrail.decision"] == "allow"
    assert s["guardrail.key_id"] == "dev" and s["guardrail.team"] == "dev"
    assert server.start_time <= client.start_time and client.end_time <= server.end_time
    guards = [dict(e.attributes or {})["guardrail.guard"] for e in server.events if e.name == "guardrail.verdict"]
    assert "phrase_denylist" in guards
    dumped = json.dumps([str(sp.to_json()) for sp in spans])
    for secret in (DEV_KEY, UPSTREAM_KEY, PROMPT, "Windy"):
        assert secret not in dumped


async def test_blocked_and_refused_requests_have_no_upstream_span(traced: Traced, upstream: FakeUpstream) -> None:
    with pytest.raises(openai.BadRequestError):
        await traced.client().chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "When does Project Nightjar launch?"}]
        )
    spans = traced.finished()
    assert by_kind(spans, SpanKind.CLIENT) == []
    (server,) = spans
    s = dict(server.attributes or {})
    assert s["guardrail.decision"] == "block" and s["http.response.status_code"] == 400
    assert list(s["guardrail.rule_ids"]) == ["denylist.internal-codename"]
    blocks = [
        dict(e.attributes or {}) for e in server.events if dict(e.attributes or {}).get("guardrail.action") == "block"
    ]
    assert blocks and list(blocks[0]["guardrail.rule_ids"]) == ["denylist.internal-codename"]

    with pytest.raises(openai.AuthenticationError):
        await traced.client("sk-wrong-key-123").chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}]
        )
    (server,) = traced.finished()
    s = dict(server.attributes or {})
    assert s["http.response.status_code"] == 401 and s["error.type"] == "invalid_api_key"
    assert "sk-wrong-key-123" not in str(server.to_json())


async def test_embeddings_and_upstream_error(traced: Traced, upstream: FakeUpstream) -> None:
    await traced.client().embeddings.create(model="text-embedding-3-small", input=["a", "b"])
    (client,) = by_kind(traced.finished(), SpanKind.CLIENT)
    assert client.name == "embeddings text-embedding-3-small"
    assert dict(client.attributes or {})["gen_ai.operation.name"] == "embeddings"

    upstream.script(Reply(status=503))
    with pytest.raises(openai.APIStatusError):
        await traced.client().chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
    spans = traced.finished()
    (client,) = by_kind(spans, SpanKind.CLIENT)
    (server,) = by_kind(spans, SpanKind.SERVER)
    assert dict(client.attributes or {})["error.type"] == "upstream_error"
    assert "gen_ai.response.model" not in dict(client.attributes or {})
    assert not server.status.is_ok


def test_off_unless_configured() -> None:
    assert tracing.provider_from_env({}) is None
    provider = tracing.provider_from_env({"GUARDRAIL_OTEL_ENDPOINT": "http://collector:4318"})
    assert provider is not None
    try:
        (processor,) = provider._active_span_processor._span_processors
        exporter = processor.span_exporter
        assert exporter._endpoint == "http://collector:4318/v1/traces"
        assert provider.resource.attributes["service.name"] == "guardrail-proxy"
    finally:
        provider.shutdown()
