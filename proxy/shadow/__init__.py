"""Shadow traffic: a sampled share of requests also goes to a candidate model, off the critical path.

``install(app)`` creates the worker (bounded queue + tasks + its own HTTP session, owned
by the app's lifetime) and adds it as an observer; the ``shadow`` response guard
(``proxy.shadow.guard:build``, listed in ``rules/pipeline.yaml``) picks the requests.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from proxy.feedback.metrics import metrics_registry
from proxy.runtime import RUNTIME
from proxy.shadow.config import load_shadow
from proxy.shadow.pricing import load_prices
from proxy.shadow.worker import ShadowWorker

SHADOW_WORKER = web.AppKey("shadow_worker", ShadowWorker)


def install(app: web.Application) -> None:
    if SHADOW_WORKER in app:  # idempotent
        return
    rt = app[RUNTIME]
    rules_dir = rt.settings.rules_dir
    config = load_shadow(rules_dir)  # queue size and workers: read once, at startup

    def response_slots() -> tuple[object, ...]:
        current = rt.rules.current
        return current.response if current is not None else ()

    worker = ShadowWorker(
        queue_size=config.queue_size,
        concurrency=config.concurrency,
        default_url=rt.settings.upstream.url,
        default_key=rt.settings.upstream.api_key,
        services=rt.services,
        prices=load_prices(rules_dir),
        registry=metrics_registry(app),
        response_slots=response_slots,
    )
    app[SHADOW_WORKER] = worker
    rt.observers.append(worker)

    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        await worker.start()
        yield
        await worker.stop()

    app.cleanup_ctx.append(lifetime)


__all__ = ["SHADOW_WORKER", "ShadowWorker", "install"]
