"""What happens after a request ends: metrics, logs, audit. One small protocol."""

from __future__ import annotations

import logging
from typing import Protocol

from proxy.context import RequestContext

log = logging.getLogger("guardrail.request")


class Observer(Protocol):
    def request_finished(self, ctx: RequestContext) -> None: ...


class LogObserver:
    """The default: one structured log line per request, no prompt text, no key."""

    def request_finished(self, ctx: RequestContext) -> None:
        log.info(
            "request",
            extra={
                "request_id": ctx.request_id,
                "route": ctx.route.value,
                "key_id": ctx.principal.key_id,
                "team": ctx.principal.team,
                "model": ctx.model,
                "status": ctx.status,
                "error_code": ctx.error_code,
                "verdicts": [
                    {
                        "guard": d.verdict.guard,
                        "verdict": type(d.verdict).__name__,
                        "enforced": d.enforced,
                        "rules": [h.rule_id for h in d.verdict.hits],
                    }
                    for d in ctx.decisions
                    if d.verdict.hits
                ],
            },
        )
