"""One mutable slot per HTTP request, shared by the ops middleware and the observers.

The forward handler calls observers from inside the request's own task, so a
``ContextVar`` set by the middleware is visible there. The scope lets the ops
middleware learn whether a request reached the guard pipeline (``ctx`` set) or was
turned away before it had a context (bad key, unknown path, bad JSON), and lets the
tracing hook read the finished context once the handler returned.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from proxy.context import RequestContext


@dataclass(slots=True)
class Scope:
    started: float = field(default_factory=time.perf_counter)
    ctx: RequestContext | None = None
    span: Any = None  # the tracing module's server span, when tracing is on
    response: web.StreamResponse | None = None  # None when the handler raised
    refused: dict[str, Any] | None = None  # set by log_unobserved (the first end hook)


log = logging.getLogger("guardrail.ops")

_SCOPE: ContextVar[Scope | None] = ContextVar("guardrail_ops_scope", default=None)

StartHook = Callable[[web.Request, Scope], None]
EndHook = Callable[[web.Request, Scope, int], None]


def current() -> Scope | None:
    return _SCOPE.get()


class ScopeObserver:
    """Put the finished context into the request's scope (first in the observer list)."""

    def request_finished(self, ctx: RequestContext) -> None:
        scope = _SCOPE.get()
        if scope is not None:
            scope.ctx = ctx


@dataclass
class Hooks:
    start: list[StartHook] = field(default_factory=list)
    end: list[EndHook] = field(default_factory=list)


HOOKS = web.AppKey("ops_hooks", Hooks)


def middleware(hooks: Hooks) -> Middleware:
    @web.middleware
    async def ops_scope(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in ("/metrics", "/healthz", "/readyz"):
            return await handler(request)
        scope = Scope()
        token = _SCOPE.set(scope)
        status = 500
        try:
            for start in hooks.start:
                start(request, scope)
            resp = await handler(request)
            scope.response = resp
            status = resp.status
            return resp
        except web.HTTPException as exc:
            status = exc.status
            raise
        except BaseException as exc:  # CancelledError included: the client went away
            status = 499 if not isinstance(exc, Exception) else 500
            raise
        finally:
            _SCOPE.reset(token)
            for end in hooks.end:
                try:
                    end(request, scope, status)
                except Exception:  # an ops hook must never break a request
                    log.exception("ops hook failed")

    return ops_scope


_PATH_ROUTES = {
    "/v1/chat/completions": "chat.completions",
    "/v1/completions": "completions",
    "/v1/responses": "responses",
    "/v1/embeddings": "embeddings",
    "/v1/models": "models",
    "/v1/feedback": "feedback",
}
request_log = logging.getLogger("guardrail.request")


def route_label(path: str) -> str:
    """A bounded label for a path (never the path itself: it is client-controlled)."""
    return _PATH_ROUTES.get(path, "other")


def _error_code(resp: web.StreamResponse | None) -> str | None:
    body = getattr(resp, "body", None)
    if not isinstance(body, bytes) or len(body) > 8192 or resp is None or resp.content_type != "application/json":
        return None
    try:
        err = json.loads(body).get("error")
    except (ValueError, AttributeError):
        return None
    code = err.get("code") if isinstance(err, dict) else None
    return code if isinstance(code, str) else None


def refused(request: web.Request, scope: Scope, status: int) -> dict[str, Any] | None:
    """For a /v1 request turned away before the pipeline (401, bad JSON, unknown path...):
    request id (from the response headers when it has one), route label, method, status
    and error code. None for requests the pipeline saw (their observers report them)."""
    if scope.ctx is not None or not request.path.startswith("/v1/"):
        return None
    resp = scope.response
    rid = None
    if resp is not None:
        rid = resp.headers.get("x-guardrail-request-id") or resp.headers.get("x-request-id")
    return {
        "request_id": rid or uuid.uuid4().hex,
        "route": route_label(request.path),
        "method": request.method,
        "status": status,
        "error_code": _error_code(resp),
    }


def log_unobserved(request: web.Request, scope: Scope, status: int) -> None:
    """The ``request`` log line for refused requests (``LogObserver`` writes the others'):
    no body, no key, no path (the route label instead)."""
    summary = refused(request, scope, status)
    if summary is not None:
        scope.refused = summary
        request_log.info("request", extra=summary)


def install(app: web.Application) -> Hooks:
    """Idempotent: one scope middleware and observer per app, hooks added by the ops modules."""
    hooks = app.get(HOOKS)
    if hooks is None:
        from proxy.runtime import RUNTIME

        hooks = Hooks()
        app[HOOKS] = hooks
        app.middlewares.append(middleware(hooks))
        app[RUNTIME].observers.insert(0, ScopeObserver())
        hooks.end.append(log_unobserved)
    return hooks
