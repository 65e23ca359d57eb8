"""Shared state: the store protocol, its in-memory and Redis implementations, app wiring.

``make_store(url)`` builds the store from ``GUARDRAIL_REDIS_URL`` (None: in-memory).
``install(app)`` puts it on ``Services.state`` (unless one is there already), closes it
with the app, adds a ``/readyz`` entry and exports its health counters as metrics.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

from aiohttp import web

from proxy.state.memory import MemoryStore
from proxy.state.store import (
    Admission,
    Health,
    Periods,
    Quota,
    Reservation,
    StateStore,
    StoreUnavailable,
    Subject,
)


def make_store(redis_url: str | None) -> StateStore:
    if not redis_url:
        return MemoryStore()
    from proxy.state.redis_store import RedisStore

    return RedisStore(redis_url)


class _HealthCollector:
    """Exports ``Health`` counters (read at scrape time, no double bookkeeping)."""

    def __init__(self, store: Any) -> None:
        self.store = store

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        h: Health | None = getattr(self.store, "health", None)
        if h is None:
            return
        up = GaugeMetricFamily("guardrail_state_up", "1 when the state store answers", labels=["backend"])
        up.add_metric([h.backend], 1.0 if h.up else 0.0)
        yield up
        events = CounterMetricFamily(
            "guardrail_state_events", "State store failures and what the limits guard did", labels=["backend", "event"]
        )
        for name in ("failures", "fast_fails", "recoveries", "fail_open", "fail_closed", "settle_failures"):
            events.add_metric([h.backend, name], float(getattr(h, name)))
        yield events


def install(app: web.Application) -> None:
    from proxy.feedback.metrics import metrics_registry
    from proxy.handlers.misc import READY_CHECKS
    from proxy.runtime import RUNTIME

    rt = app[RUNTIME]
    if rt.services.state is None:
        rt.services.state = make_store(rt.settings.redis_url)
    store = rt.services.state
    try:
        metrics_registry(app).register(_HealthCollector(store))
    except ValueError:  # already registered (install called twice)
        pass

    async def ready() -> dict[str, Any]:
        up = await store.ping()
        return {"backend": getattr(store, "backend", "?"), "up": up, "ok": True}

    app[READY_CHECKS]["state"] = ready

    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        yield
        await store.close()

    app.cleanup_ctx.append(lifetime)


__all__ = [
    "Admission",
    "Health",
    "MemoryStore",
    "Periods",
    "Quota",
    "Reservation",
    "StateStore",
    "StoreUnavailable",
    "Subject",
    "install",
    "make_store",
]
