"""Models list, health and readiness, and other ``/v1/*`` paths."""

from __future__ import annotations

from aiohttp import web

from proxy.errors import ProxyError, not_found
from proxy.handlers.intake import authenticate, read_body
from proxy.runtime import RUNTIME
from proxy.upstream.client import DROP_RESPONSE_HEADERS


async def list_models(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    rules = rt.rules.current
    assert rules is not None
    principal = authenticate(request, rules.keyring)
    names = list(principal.models) or sorted(rules.keyring.aliases)
    data = [{"id": m, "object": "model", "created": 0, "owned_by": "guardrail-proxy"} for m in names]
    return web.json_response({"object": "list", "data": data})


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    status = rt.rules.status
    breaker = rt.upstream.breaker.state
    checks = {
        "rules": {
            "loaded": rt.rules.current is not None,
            "version": rt.rules.current.version if rt.rules.current else None,
            "reloads_ok": status.ok,
            "reloads_rejected": status.rejected,
            "last_error": status.last_error,
        },
        "upstream": {"circuit": breaker.name.lower()},
    }
    for name, check in request.app.get(READY_CHECKS, {}).items():
        checks[name] = await check()
    ready = rt.rules.current is not None and all(c.get("ok", True) for c in checks.values() if isinstance(c, dict))
    return web.json_response(
        {"status": "ready" if ready else "not_ready", "checks": checks}, status=200 if ready else 503
    )


SERVED_POST_PATHS = frozenset({"/v1/chat/completions", "/v1/completions", "/v1/responses", "/v1/embeddings"})
READY_CHECKS: web.AppKey[dict] = web.AppKey("ready_checks", dict)


async def other_v1(request: web.Request) -> web.StreamResponse:
    """Forward or refuse, as ``server.other_v1_paths`` says."""
    rt = request.app[RUNTIME]
    rules = rt.rules.current
    assert rules is not None
    authenticate(request, rules.keyring)
    if request.path in SERVED_POST_PATHS or request.path == "/v1/models":
        raise ProxyError(405, f"Method {request.method} is not allowed on {request.path}.", code="method_not_allowed")
    if rules.pipeline.server.other_v1_paths == "refuse":
        raise not_found(f"The path {request.path} is not served by this proxy.", code="unknown_url")
    body = await read_body(request, rules.pipeline.server.max_body_bytes, rt.settings.client_timeout_s)
    path = request.path[len("/v1") :]
    if request.query_string:
        path += "?" + request.query_string
    resp = await rt.upstream.send(request.method, path, body or None, rt.upstream.headers_for(request.headers))
    try:
        headers = {k: v for k, v in resp.headers.items() if k.lower() not in DROP_RESPONSE_HEADERS}
        out = web.StreamResponse(status=resp.status, headers=headers)
        await out.prepare(request)
        async for chunk in resp.content.iter_any():
            await out.write(chunk)
        await out.write_eof()
        return out
    finally:
        resp.release()


def error_json(status: int, message: str, code: str, type_: str = "invalid_request_error") -> web.Response:
    return ProxyError(status, message, type=type_, code=code).response()


__all__ = ["READY_CHECKS", "error_json", "healthz", "list_models", "other_v1", "readyz"]
