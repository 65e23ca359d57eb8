"""The Prometheus registry the platform extras (shadow, feedback, probes) register on.

One registry per app (tests run several apps in one process, so never the global one).
When the operations work's ``proxy.ops.metrics`` exposes a per-app registry, this
returns it instead, so everything lands on the same ``/metrics`` page.
"""

from __future__ import annotations

import importlib

from aiohttp import web
from prometheus_client import CollectorRegistry

EXTRAS_REGISTRY = web.AppKey("extras_registry", CollectorRegistry)


def metrics_registry(app: web.Application) -> CollectorRegistry:
    found = app.get(EXTRAS_REGISTRY)
    if found is not None:
        return found
    registry: CollectorRegistry | None = None
    try:
        ops = importlib.import_module("proxy.ops.metrics")
        accessor = getattr(ops, "registry", None)
        candidate = accessor(app) if callable(accessor) else None
        registry = candidate if isinstance(candidate, CollectorRegistry) else None
    except ImportError:
        registry = None
    registry = registry or CollectorRegistry(auto_describe=True)
    app[EXTRAS_REGISTRY] = registry
    return registry
