"""Operations: Prometheus metrics, the hash-chained audit trail, OpenTelemetry tracing.

``install(app)`` (one line in ``create_app``) wires all three; each part is idempotent
and the audit trail and tracing stay off unless configured (see their modules).
"""

from __future__ import annotations

from aiohttp import web


def install(app: web.Application) -> None:
    from proxy.ops import audit, metrics, tracing

    metrics.install(app)
    audit.install(app)
    tracing.install(app)


__all__ = ["install"]
