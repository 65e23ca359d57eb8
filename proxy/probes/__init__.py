"""Model health probes: known prompts, expected answers, on a schedule, for each pinned model.

``install(app)`` validates ``rules/probes.yaml`` (a bad file stops startup, like any
rule file), runs the probe loop for the app's lifetime and adds a ``probes`` entry to
``/readyz`` detail.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import web

from proxy.feedback.metrics import metrics_registry
from proxy.handlers.misc import READY_CHECKS
from proxy.probes.config import load_probes
from proxy.probes.runner import ProbeRunner
from proxy.runtime import RUNTIME

PROBES = web.AppKey("probes", ProbeRunner)


def install(app: web.Application) -> None:
    if PROBES in app:  # idempotent
        return
    rt = app[RUNTIME]
    runner = ProbeRunner(rt, load_probes(rt.settings.rules_dir), metrics_registry(app))
    app[PROBES] = runner
    app.setdefault(READY_CHECKS, {})["probes"] = runner.ready_check

    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(runner.loop(), name="probes")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    app.cleanup_ctx.append(lifetime)


__all__ = ["PROBES", "ProbeRunner", "install"]
