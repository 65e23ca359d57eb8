"""What the observability adds per request, on the event loop: metrics observer, audit record
(build + seal, the seal runs in the writer's thread in production), tracing spans.

    .venv/bin/python bench/ops_observe_cost.py [N]

Prints microseconds per request (median of 5 rounds of N requests) for a chat request with
usage, eight guard decisions (one with two hits) and an upstream call.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry

from proxy.context import Principal, RequestContext, Route, Usage
from proxy.ops import scope as ops_scope
from proxy.ops.audit import AuditConfig, build_record, canonical, seal
from proxy.ops.metrics import Metrics, MetricsObserver, Prices
from proxy.verdicts import Allow, Block, Hit


def make_ctx(i: int) -> RequestContext:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello " * 100}], "max_tokens": 64}
    ctx = RequestContext(f"{i:032x}", Route.CHAT, Principal("dev", "dev"), body, json.dumps(body).encode())
    ctx.requested_model = ctx.upstream_model = "gpt-4o-mini"
    ctx.usage = Usage(120, 40)
    ctx.status = 200
    ctx.upstream_calls = 1
    ctx.upstream_started = time.perf_counter()
    ctx.upstream_ms = 120.0
    for g in ("limits", "conversation_limits", "phrase_denylist", "injection", "approved", "pii", "canary"):
        ctx.record(Allow(g), enforced=True, elapsed_ms=0.5)
    ctx.record(Block("output_anomaly", "no", (Hit("a.b", 0.9), Hit("c.d", 0.7))), enforced=False, elapsed_ms=2.0)
    return ctx


def per_request_us(fn: Any, n: int) -> float:
    rounds = []
    ctxs = [make_ctx(i) for i in range(n)]
    for _ in range(5):
        t0 = time.perf_counter()
        for ctx in ctxs:
            fn(ctx)
        rounds.append((time.perf_counter() - t0) / n * 1e6)
    return statistics.median(rounds)


class _Rt:  # the parts of Runtime that Prices reads
    class rules:
        current = None

    class settings:
        rules_dir = Path("rules")


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    metrics = MetricsObserver(Metrics(CollectorRegistry()), Prices(_Rt()))  # type: ignore[arg-type]
    print(f"metrics observer:           {per_request_us(metrics.request_finished, n):8.1f} us/request")
    cfg = AuditConfig(Path("unused"), sample_rate=0.01)
    print(f"audit record (build):       {per_request_us(lambda c: build_record(c, cfg), n):8.1f} us/request")
    print(
        f"audit seal + encode:        {per_request_us(lambda c: canonical(seal(build_record(c, cfg), '0' * 64)), n):8.1f} us/request (build included; writer thread)"
    )
    try:
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        from proxy.ops.tracing import Tracing
    except ImportError:
        print("tracing: opentelemetry-sdk not installed")
        return
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing = Tracing(provider, "http://127.0.0.1:9000/v1", owned=False)
    app = web.Application()
    app.router.add_post("/v1/chat/completions", lambda r: web.Response())
    from aiohttp.test_utils import make_mocked_request

    request = make_mocked_request("POST", "/v1/chat/completions", app=app)

    def traced(ctx: RequestContext) -> None:
        scope = ops_scope.Scope()
        tracing.start(request, scope)
        scope.ctx = ctx
        tracing.end(request, scope, 200)
        exporter.clear()

    print(f"tracing (2 spans, 8 events): {per_request_us(traced, n):7.1f} us/request (in-memory exporter)")


if __name__ == "__main__":
    main()
