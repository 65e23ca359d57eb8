"""OpenTelemetry tracing with the GenAI semantic conventions; off unless configured.

On when ``GUARDRAIL_OTEL_ENDPOINT`` (an OTLP/HTTP base URL or full ``…/v1/traces`` URL)
or the standard ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set and the ``opentelemetry-sdk`` and
``opentelemetry-exporter-otlp-proto-http`` packages are installed. The standard
``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES`` and ``OTEL_TRACES_SAMPLER[_ARG]``
apply. Spans are exported by the SDK's batch processor in its own thread.

Per request: a SERVER span ``{METHOD} {path}`` (continuing an incoming ``traceparent``)
carrying ``http.*`` and ``guardrail.*`` attributes (decision, rule ids, key id, team)
with one ``guardrail.verdict`` event per guard; and, when the request went upstream, a
CLIENT child span ``{gen_ai.operation.name} {gen_ai.request.model}`` timed over the
upstream call with ``gen_ai.system``, ``gen_ai.provider.name``, ``gen_ai.operation.name``,
``gen_ai.request.model``, ``gen_ai.response.model``, ``gen_ai.usage.input_tokens`` /
``output_tokens`` and the request parameters. No prompt or answer text, no key.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from proxy.context import RequestContext, Route
from proxy.handlers.explain import decision_headers
from proxy.ops import scope as ops_scope
from proxy.ops.metrics import action_of
from proxy.runtime import RUNTIME

log = logging.getLogger("guardrail.ops")

OPERATION = {
    Route.CHAT: "chat",
    Route.COMPLETIONS: "text_completion",
    Route.RESPONSES: "chat",
    Route.EMBEDDINGS: "embeddings",
}
_PARAMS = {
    "max_tokens": "gen_ai.request.max_tokens",
    "max_completion_tokens": "gen_ai.request.max_tokens",
    "max_output_tokens": "gen_ai.request.max_tokens",
    "temperature": "gen_ai.request.temperature",
    "top_p": "gen_ai.request.top_p",
    "frequency_penalty": "gen_ai.request.frequency_penalty",
    "presence_penalty": "gen_ai.request.presence_penalty",
    "seed": "gen_ai.request.seed",
}
TRACER = web.AppKey("ops_tracer", object)


def endpoint_from_env(env: dict[str, str] | None = None) -> str | None:
    env = dict(os.environ) if env is None else env
    return (env.get("GUARDRAIL_OTEL_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or "").strip() or None


def provider_from_env(env: dict[str, str] | None = None) -> Any | None:
    """A TracerProvider exporting over OTLP/HTTP, or None (not configured / not installed)."""
    env = dict(os.environ) if env is None else env
    endpoint = endpoint_from_env(env)
    if endpoint is None:
        return None
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        log.warning("tracing configured but opentelemetry-sdk / the OTLP exporter is not installed; tracing off")
        return None
    guardrail = env.get("GUARDRAIL_OTEL_ENDPOINT", "").strip()
    if guardrail:
        url = guardrail if guardrail.rstrip("/").endswith("/v1/traces") else guardrail.rstrip("/") + "/v1/traces"
        exporter = OTLPSpanExporter(endpoint=url)
    else:
        exporter = OTLPSpanExporter()  # reads OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT, appends /v1/traces
    attrs = {} if env.get("OTEL_SERVICE_NAME") else {"service.name": "guardrail-proxy"}
    provider = TracerProvider(resource=Resource.create(attrs))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def _epoch_ns(perf: float) -> int:
    """A ``time.perf_counter()`` reading as wall-clock nanoseconds."""
    return time.time_ns() - int((time.perf_counter() - perf) * 1e9)


def genai_attributes(ctx: RequestContext, upstream_host: str | None, upstream_port: int | None) -> dict[str, Any]:
    attrs: dict[str, Any] = {
        "gen_ai.system": "openai",
        "gen_ai.provider.name": "openai",
        "gen_ai.operation.name": OPERATION[ctx.route],
        "gen_ai.request.model": ctx.model,
    }
    if ctx.status and ctx.status < 400 and ctx.upstream_model:
        attrs["gen_ai.response.model"] = ctx.upstream_model
    if ctx.usage is not None:
        attrs["gen_ai.usage.input_tokens"] = ctx.usage.prompt_tokens
        attrs["gen_ai.usage.output_tokens"] = ctx.usage.completion_tokens
    for field, name in _PARAMS.items():
        value = ctx.body.get(field)
        if isinstance(value, int | float) and not isinstance(value, bool):
            attrs[name] = value
    if upstream_host:
        attrs["server.address"] = upstream_host
        if upstream_port:
            attrs["server.port"] = upstream_port
    if ctx.error_code:
        attrs["error.type"] = ctx.error_code
    return attrs


def guardrail_attributes(ctx: RequestContext) -> dict[str, Any]:
    headers = decision_headers(ctx)
    attrs: dict[str, Any] = {
        "guardrail.request_id": ctx.request_id,
        "guardrail.route": ctx.route.value,
        "guardrail.key_id": ctx.principal.key_id,
        "guardrail.team": ctx.principal.team,
        "guardrail.decision": headers["x-guardrail-decision"],
        "guardrail.requested_model": ctx.requested_model or ctx.model,
        "guardrail.stream": ctx.stream,
        "gen_ai.operation.name": OPERATION[ctx.route],
        "gen_ai.request.model": ctx.model,
    }
    if "x-guardrail-rules" in headers:
        attrs["guardrail.rule_ids"] = headers["x-guardrail-rules"].split(",")
    if "x-guardrail-monitor" in headers:
        attrs["guardrail.monitor_rule_ids"] = headers["x-guardrail-monitor"].split(",")
    if ctx.ttft_ms is not None:
        attrs["guardrail.ttft_ms"] = round(ctx.ttft_ms, 3)
    if ctx.error_code:
        attrs["error.type"] = ctx.error_code
    return attrs


class Tracing:
    def __init__(self, provider: Any, upstream_url: str, *, owned: bool) -> None:
        from opentelemetry import trace

        self.provider = provider
        self.owned = owned
        self.tracer = provider.get_tracer("guardrail-proxy")
        self._trace = trace
        parts = urlsplit(upstream_url)
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80 if parts.scheme == "http" else None)

    def start(self, request: web.Request, scope: ops_scope.Scope) -> None:
        from opentelemetry import propagate

        parent = propagate.extract(dict(request.headers))
        route = ops_scope.route_label(request.path)
        name = f"{request.method} {request.path}" if route != "other" else request.method
        scope.span = self.tracer.start_span(
            name,
            context=parent,
            kind=self._trace.SpanKind.SERVER,
            attributes={"http.request.method": request.method, "http.route": request.path if route != "other" else ""},
        )

    def end(self, request: web.Request, scope: ops_scope.Scope, status: int) -> None:
        span = scope.span
        if span is None:
            return
        from opentelemetry.trace import Status, StatusCode

        span.set_attribute("http.response.status_code", status)
        ctx = scope.ctx
        if ctx is not None:
            span.set_attributes(guardrail_attributes(ctx))
            for d in ctx.decisions:
                v = d.verdict
                event = {
                    "guardrail.guard": v.guard,
                    "guardrail.stage": d.stage,
                    "guardrail.action": action_of(v),
                    "guardrail.enforced": d.enforced,
                    "guardrail.elapsed_ms": round(d.elapsed_ms, 3),
                }
                if v.hits:
                    event["guardrail.rule_ids"] = [h.rule_id for h in v.hits]
                    event["guardrail.scores"] = [float(h.score) for h in v.hits]
                span.add_event("guardrail.verdict", event)
            if ctx.upstream_calls and ctx.upstream_started:
                self._upstream_span(span, ctx)
        elif scope.refused is not None and scope.refused.get("error_code"):
            span.set_attribute("error.type", str(scope.refused["error_code"]))
        if status >= 500:
            span.set_status(Status(StatusCode.ERROR))
        span.end()

    def _upstream_span(self, parent: Any, ctx: RequestContext) -> None:
        from opentelemetry.trace import Status, StatusCode

        op = OPERATION[ctx.route]
        start = _epoch_ns(ctx.upstream_started)
        child = self.tracer.start_span(
            f"{op} {ctx.model}",
            context=self._trace.set_span_in_context(parent),
            kind=self._trace.SpanKind.CLIENT,
            start_time=start,
            attributes=genai_attributes(ctx, self.host, self.port),
        )
        if ctx.error_code and ctx.error_code.startswith("upstream_"):
            child.set_status(Status(StatusCode.ERROR))
        child.end(end_time=start + int(ctx.upstream_ms * 1e6))


def install(app: web.Application, provider: Any | None = None) -> Tracing | None:
    """Idempotent; on with an explicit ``provider`` (tests) or when the environment configures it."""
    found = app.get(TRACER)
    if isinstance(found, Tracing):
        return found
    owned = provider is None
    provider = provider or provider_from_env()
    if provider is None:
        return None
    rt = app[RUNTIME]
    tracing = Tracing(provider, rt.settings.upstream.url, owned=owned)
    app[TRACER] = tracing
    hooks = ops_scope.install(app)
    hooks.start.append(tracing.start)
    hooks.end.append(tracing.end)
    if owned:

        async def lifetime(app: web.Application) -> AsyncIterator[None]:
            yield
            await asyncio.to_thread(provider.shutdown)  # flush what is batched

        app.cleanup_ctx.append(lifetime)
    endpoint = endpoint_from_env()
    log.info("tracing on", extra={"otlp_host": urlsplit(endpoint).hostname if endpoint else "explicit provider"})
    return tracing
