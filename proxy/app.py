"""The aiohttp application: routes, error middleware, resource lifetimes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from aiohttp import web
from aiohttp.typedefs import Handler

from proxy import feedback, ops, probes, shadow
from proxy.context import Route
from proxy.errors import ProxyError
from proxy.handlers import misc
from proxy.handlers.forward import route_handler
from proxy.openapi import serve_spec
from proxy.rules import watch as rules_watch
from proxy.rules.holder import RulesHolder
from proxy.runtime import RUNTIME, Runtime, Settings
from proxy.services import Services
from proxy.state import install as install_state
from proxy.upstream.client import Upstream

log = logging.getLogger("guardrail.app")


@web.middleware
async def openai_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure leaves as an OpenAI-shaped JSON error, never a traceback."""
    try:
        return await handler(request)
    except ProxyError as exc:
        return exc.response()
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        codes = {404: "unknown_url", 405: "method_not_allowed", 413: "request_too_large"}
        message = {
            404: f"Unknown path: {request.path}",
            405: f"Method {request.method} is not allowed on {request.path}",
        }
        return ProxyError(
            exc.status, message.get(exc.status, exc.reason), code=codes.get(exc.status, "http_error")
        ).response()
    except asyncio.CancelledError:
        raise
    except Exception:
        # The route pattern, not the raw path: a client-chosen path may hold anything.
        route = request.match_info.route.resource.canonical if request.match_info.route.resource else "?"
        log.exception("unhandled error", extra={"route": route, "method": request.method})
        return ProxyError(
            500, "The proxy failed to handle the request.", type="server_error", code="internal_error"
        ).response()


async def _lifetime(app: web.Application) -> AsyncIterator[None]:
    rt = app[RUNTIME]
    if rt.rules.current is None:
        await asyncio.to_thread(rt.rules.load_now)
    await rt.upstream.start()
    yield
    await rt.upstream.close()
    rt.services.close()


def create_app(settings: Settings, services: Services | None = None) -> web.Application:
    services = services or Services()
    holder = RulesHolder(settings.rules_dir, services, no_guards=settings.no_guards)
    rt = Runtime(settings=settings, services=services, rules=holder, upstream=Upstream(settings.upstream))
    app = web.Application(middlewares=[openai_errors], handler_args={"max_field_size": 16384})
    app[RUNTIME] = rt
    app[misc.READY_CHECKS] = {}
    app.cleanup_ctx.append(_lifetime)
    app.router.add_post("/v1/chat/completions", route_handler(Route.CHAT))
    app.router.add_post("/v1/completions", route_handler(Route.COMPLETIONS))
    app.router.add_post("/v1/responses", route_handler(Route.RESPONSES))
    app.router.add_post("/v1/embeddings", route_handler(Route.EMBEDDINGS))
    app.router.add_get("/v1/models", misc.list_models)
    # Platform extras (each idempotent, each adds its own routes / tasks / observers).
    install_state(app)  # services.state: Redis when GUARDRAIL_REDIS_URL is set, else in-memory
    shadow.install(app)
    feedback.install(app)
    probes.install(app)
    rules_watch.install(app)  # hot reload of rules/ (poll + SIGHUP), /readyz detail
    ops.install(app)  # /metrics, audit trail (GUARDRAIL_AUDIT_PATH), tracing (GUARDRAIL_OTEL_ENDPOINT)
    app.router.add_route("*", "/v1/{tail:.*}", misc.other_v1)
    app.router.add_get("/healthz", misc.healthz)
    app.router.add_get("/readyz", misc.readyz)
    app.router.add_get("/openapi.json", serve_spec)
    return app


__all__ = ["Runtime", "create_app"]
