"""Runs the request guards in order and turns verdicts into the request's fate."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from proxy.context import RequestContext
from proxy.pipeline.config import GuardEntry
from proxy.pipeline.guard import RequestGuard, ResponseGuard
from proxy.verdicts import Allow, Block, Hit, Rewrite, Substitute, Verdict

log = logging.getLogger("guardrail.pipeline")


@dataclass(frozen=True, slots=True)
class RequestSlot:
    entry: GuardEntry
    guard: RequestGuard


@dataclass(frozen=True, slots=True)
class ResponseSlot:
    entry: GuardEntry
    guard: ResponseGuard


def error_verdict(entry: GuardEntry, exc: BaseException) -> Verdict:
    """What a failing guard means, as its pipeline entry declares (fail closed or open)."""
    kind = "timeout" if isinstance(exc, TimeoutError) else "error"
    hit = Hit(rule_id=f"{entry.guard}.{kind}", score=1.0, layer="guard", detail=type(exc).__name__)
    if entry.on_error == "block":
        return Block(
            guard=entry.guard,
            message=f"The request could not be checked by guard {entry.guard!r} ({kind}); it was refused.",
            hits=(hit,),
            status=503,
            code="guard_unavailable",
            type="server_error",
        )
    return Allow(guard=entry.guard, hits=(hit,))


async def run_request_guards(slots: tuple[RequestSlot, ...], ctx: RequestContext) -> Block | Substitute | None:
    """Run each guard; return the verdict that ends the request, or None to forward it."""
    for slot in slots:
        entry = slot.entry
        t0 = time.perf_counter()
        try:
            async with asyncio.timeout(entry.timeout_ms / 1000):
                verdict = await slot.guard.check(ctx)
        except Exception as exc:  # a guard failing is handled as its entry declares
            log.warning(
                "guard failed",
                extra={"guard": entry.guard, "error": type(exc).__name__, "request_id": ctx.request_id},
            )
            verdict = error_verdict(entry, exc)
        enforced = entry.mode == "enforce"
        ctx.record(verdict, enforced=enforced, elapsed_ms=(time.perf_counter() - t0) * 1000)
        if not enforced:
            continue
        if isinstance(verdict, Rewrite) and verdict.body is not None:
            ctx.replace_body(verdict.body)
        elif isinstance(verdict, Block | Substitute):
            return verdict
    return None
