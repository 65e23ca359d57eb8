"""Prometheus metrics on ``GET /metrics``, one registry per app (never the global one).

``install(app)`` adds the route, the request observer and a scrape-time collector for
state that lives elsewhere (``proxy.ops.scrape``: circuit breaker, rule reloads,
state-store errors, the injection detector's work). Other modules register their own
metrics on ``registry(app)``.

Label cardinality is bounded: key ids and teams come from the policy, models are
capped (``MAX_MODEL_LABELS`` distinct values, then ``other``), status is the HTTP code.
No prompt text, key or user-supplied free text ever becomes a label.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

from proxy.context import RequestContext
from proxy.ops import scope as ops_scope
from proxy.ops.scrape import ScrapeCollector
from proxy.runtime import RUNTIME, Runtime
from proxy.verdicts import Allow, Block, Flag, Rewrite, Substitute, Verdict

log = logging.getLogger("guardrail.ops")

MAX_MODEL_LABELS = 64
COST_EXTRA = "limits.cost_usd"  # a float the budgets guard may leave on ctx.extras

# Seconds. Overhead is what the proxy adds (guards, relay), so its buckets start low.
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
OVERHEAD_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
GUARD_BUCKETS = (0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)

_REGISTRY = web.AppKey("ops_registry", CollectorRegistry)

def registry(app: web.Application) -> CollectorRegistry:
    """The app's registry, created on first use (``proxy.feedback.metrics`` calls this)."""
    reg = app.get(_REGISTRY)
    if reg is None:
        reg = CollectorRegistry(auto_describe=True)
        app[_REGISTRY] = reg
    return reg


def action_of(verdict: Verdict) -> str:
    if isinstance(verdict, Block):
        return "block"
    if isinstance(verdict, Substitute):
        return "substitute"
    if isinstance(verdict, Rewrite):
        return "rewrite"
    if isinstance(verdict, Flag):
        return "flag"
    assert isinstance(verdict, Allow)
    return "allow"


class _Cap:
    """At most ``limit`` distinct label values; later ones become ``other``."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.seen: set[str] = set()

    def __call__(self, value: str) -> str:
        if value in self.seen:
            return value
        if len(self.seen) >= self.limit:
            return "other"
        self.seen.add(value)
        return value


class Metrics:
    def __init__(self, reg: CollectorRegistry) -> None:
        who = ["route", "model", "key_id", "team"]
        self.requests = Counter(
            "guardrail_requests", "Requests by route, model, key, team and HTTP status.", [*who, "status"], registry=reg
        )
        self.duration = Histogram(
            "guardrail_request_duration_seconds",
            "Request time in the proxy, from the parsed request to the end of the handler (streams: the last byte).",
            ["route", "model"],
            buckets=REQUEST_BUCKETS,
            registry=reg,
        )
        self.upstream = Histogram(
            "guardrail_upstream_duration_seconds",
            "Time waiting on the upstream model API (send to last byte).",
            ["route", "model"],
            buckets=REQUEST_BUCKETS,
            registry=reg,
        )
        self.overhead = Histogram(
            "guardrail_overhead_seconds",
            "Time the proxy added: request duration minus upstream time.",
            ["route", "model"],
            buckets=OVERHEAD_BUCKETS,
            registry=reg,
        )
        self.ttft = Histogram(
            "guardrail_time_to_first_token_seconds",
            "Streams: request start to the first upstream byte.",
            ["route", "model"],
            buckets=REQUEST_BUCKETS,
            registry=reg,
        )
        self.tokens = Counter(
            "guardrail_tokens", "Tokens by direction (type=input|output).", [*who, "type"], registry=reg
        )
        self.cost = Counter(
            "guardrail_cost_usd",
            "Estimated spend in USD (rules/pricing.yaml).",
            ["model", "key_id", "team"],
            registry=reg,
        )
        self.verdicts = Counter(
            "guardrail_verdicts",
            "Guard verdicts by guard, stage, rule id, action and mode (enforce|monitor).",
            ["guard", "stage", "rule_id", "action", "mode"],
            registry=reg,
        )
        self.guard_duration = Histogram(
            "guardrail_guard_duration_seconds",
            "Time per guard.",
            ["guard", "stage"],
            buckets=GUARD_BUCKETS,
            registry=reg,
        )
        self.upstream_errors = Counter(
            "guardrail_upstream_errors", "Upstream failures by error code.", ["route", "code"], registry=reg
        )
        self.models = _Cap(MAX_MODEL_LABELS)
        self.upstream_models = _Cap(MAX_MODEL_LABELS)
        self._children: dict[tuple[object, tuple[str, ...]], Any] = {}

    def child(self, metric: Counter | Histogram, *values: str) -> Any:
        """``metric.labels(*values)``, memoised (label values are bounded; saves the validation)."""
        key = (metric, values)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*values)
        return found


PriceFn = Callable[[str, int, int], "float | None"]


def _no_prices(model: str, prompt_tokens: int, completion_tokens: int) -> float | None:
    return None


def load_price_fn(rules_dir: Path) -> PriceFn:
    """``rules/pricing.yaml`` through the budgets' loader (``proxy.limits.pricing``), else the
    lenient shadow reader; no file or no loader means no cost (tokens are still counted)."""
    if not (rules_dir / "pricing.yaml").exists():
        return _no_prices
    try:
        from proxy.limits.pricing import load_pricing
    except ImportError:
        from proxy.shadow.pricing import cost as shadow_cost
        from proxy.shadow.pricing import load_prices

        table = load_prices(rules_dir)
        return lambda model, p, c: shadow_cost(table, model, p, c)
    return load_pricing(rules_dir).usd


class Prices:
    """USD for a model's tokens; re-read off the event loop when the ruleset changes."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.fn: PriceFn = _no_prices
        self.version: object = None
        self._task: asyncio.Task[None] | None = None

    async def refresh(self) -> None:
        current = self.rt.rules.current
        version = current.version if current is not None else None
        self.fn = await asyncio.to_thread(load_price_fn, self.rt.settings.rules_dir)
        self.version = version

    def maybe_refresh(self) -> None:
        current = self.rt.rules.current
        if current is None or current.version == self.version or self._task is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return

        async def run() -> None:
            try:
                await self.refresh()
            except Exception:
                self.version = current.version  # do not retry until the next reload
                log.warning("pricing table unreadable; cost metrics paused until the next reload")
            finally:
                self._task = None

        self._task = loop.create_task(run())

    def cost(self, model: str, prompt_tokens: int, completion_tokens: int) -> float | None:
        return self.fn(model, prompt_tokens, completion_tokens)


class MetricsObserver:
    def __init__(self, metrics: Metrics, prices: Prices) -> None:
        self.m = metrics
        self.prices = prices

    def request_finished(self, ctx: RequestContext) -> None:
        m = self.m
        route = ctx.route.value
        model = m.models(ctx.requested_model or ctx.model)
        key, team = ctx.principal.key_id, ctx.principal.team
        m.child(m.requests, route, model, key, team, str(ctx.status) if ctx.status else "unknown").inc()
        total_s = max(0.0, time.perf_counter() - ctx.started)
        upstream_s = ctx.upstream_ms / 1000 if ctx.upstream_calls else 0.0
        m.child(m.duration, route, model).observe(total_s)
        m.child(m.overhead, route, model).observe(max(0.0, total_s - upstream_s))
        if ctx.upstream_calls:
            m.child(m.upstream, route, m.upstream_models(ctx.upstream_model or model)).observe(upstream_s)
        if ctx.ttft_ms is not None:
            m.child(m.ttft, route, model).observe(ctx.ttft_ms / 1000)
        if ctx.usage is not None:
            m.child(m.tokens, route, model, key, team, "input").inc(ctx.usage.prompt_tokens)
            m.child(m.tokens, route, model, key, team, "output").inc(ctx.usage.completion_tokens)
            cost = self._cost(ctx)
            if cost:
                m.child(m.cost, model, key, team).inc(cost)
        for d in ctx.decisions:
            v = d.verdict
            action, mode = action_of(v), "enforce" if d.enforced else "monitor"
            m.child(m.guard_duration, v.guard, d.stage).observe(d.elapsed_ms / 1000)
            rules = dict.fromkeys(h.rule_id for h in v.hits) or {"": None}
            for rule_id in rules:
                m.child(m.verdicts, v.guard, d.stage, rule_id, action, mode).inc()
        if ctx.error_code and ctx.error_code.startswith("upstream_"):
            m.child(m.upstream_errors, route, ctx.error_code).inc()

    def _cost(self, ctx: RequestContext) -> float | None:
        given = ctx.extras.get(COST_EXTRA)
        if isinstance(given, int | float) and not isinstance(given, bool):
            return float(given)
        if ctx.usage is None:
            return None
        self.prices.maybe_refresh()
        for name in (ctx.upstream_model, ctx.requested_model, ctx.model):
            if name:
                cost = self.prices.cost(name, ctx.usage.prompt_tokens, ctx.usage.completion_tokens)
                if cost is not None:
                    return cost
        return None


def _unobserved(metrics: Metrics) -> ops_scope.EndHook:
    """Count requests turned away before the pipeline had a context (401, 404, bad JSON...)."""

    def end(request: web.Request, scope: ops_scope.Scope, status: int) -> None:
        if scope.ctx is not None or not request.path.startswith("/v1/"):
            return
        route = ops_scope.route_label(request.path)
        metrics.child(metrics.requests, route, "", "", "", str(status)).inc()
        metrics.child(metrics.duration, route, "").observe(max(0.0, time.perf_counter() - scope.started))

    return end


METRICS = web.AppKey("ops_metrics", Metrics)


async def metrics_handler(request: web.Request) -> web.Response:
    body = await asyncio.to_thread(generate_latest, registry(request.app))
    resp = web.Response(body=body)
    resp.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return resp


def install(app: web.Application) -> Metrics:
    """Idempotent: ``/metrics``, the request observer, the scrape collector."""
    found = app.get(METRICS)
    if found is not None:
        return found
    rt = app[RUNTIME]
    reg = registry(app)
    metrics = Metrics(reg)
    reg.register(ScrapeCollector(rt))
    prices = Prices(rt)
    app[METRICS] = metrics
    rt.observers.append(MetricsObserver(metrics, prices))
    ops_scope.install(app).end.append(_unobserved(metrics))
    app.router.add_get("/metrics", metrics_handler)

    async def load_prices(app: web.Application) -> None:
        try:
            await prices.refresh()
        except Exception:  # pricing is optional; tokens are still counted
            log.warning("pricing table unreadable; cost metrics off until the next reload")

    app.on_startup.append(load_prices)
    return metrics


def sample(text: str, name: str, labels: dict[str, str] | None = None) -> float | None:
    """The sum of the samples named ``name`` matching ``labels`` (None if there is none)."""
    want = labels or {}
    found = [v for lab, v in samples(text, name) if all(lab.get(k) == w for k, w in want.items())]
    return sum(found) if found else None


def samples(text: str, name: str) -> Iterator[tuple[dict[str, str], float]]:
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name:
                yield dict(s.labels), float(s.value)
