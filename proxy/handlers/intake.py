"""From HTTP request to RequestContext: auth, size limit, JSON, validation, model policy."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from proxy.context import Principal, RequestContext, Route
from proxy.errors import ProxyError, bad_request, unauthorized
from proxy.models import MODELS
from proxy.policy.keys import Keyring
from proxy.rules.ruleset import Ruleset


def bearer(request: web.Request) -> str | None:
    auth = request.headers.get("Authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return request.headers.get("api-key") or None


def authenticate(request: web.Request, keyring: Keyring) -> Principal:
    principal = keyring.principal(bearer(request))
    if principal is None:
        raise unauthorized(
            "Invalid or missing proxy API key. Send 'Authorization: Bearer <proxy key>' (a key from the proxy's "
            "policy, not an upstream provider key)."
        )
    return principal


async def read_body(request: web.Request, limit: int, timeout_s: float) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise ProxyError(413, f"Request body is larger than the limit of {limit} bytes.", code="request_too_large")
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout_s):
            async for chunk in request.content.iter_any():
                size += len(chunk)
                if size > limit:
                    raise ProxyError(
                        413, f"Request body is larger than the limit of {limit} bytes.", code="request_too_large"
                    )
                chunks.append(chunk)
    except TimeoutError:
        raise ProxyError(408, "The request body was not received in time.", code="request_timeout") from None
    return b"".join(chunks)


def _depth_ok(value: Any, limit: int) -> bool:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return False
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values() if isinstance(v, dict | list))
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node if isinstance(v, dict | list))
    return True


def parse_json(raw: bytes, max_depth: int) -> dict[str, Any]:
    if not raw.strip():
        raise bad_request("The request body is empty; send a JSON object.", code="invalid_json")
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        detail = f" ({exc.msg} at position {exc.pos})" if isinstance(exc, json.JSONDecodeError) else ""
        raise bad_request(f"The request body is not valid JSON{detail}.", code="invalid_json") from None
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.", code="invalid_json")
    if not _depth_ok(body, max_depth):
        raise bad_request(f"The request body is nested deeper than {max_depth} levels.", code="invalid_json")
    return body


def validate(route: Route, body: dict[str, Any]) -> None:
    try:
        MODELS[route].model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        param = ".".join(str(p) for p in first.get("loc", ())) or None
        if first.get("type") == "missing":
            msg = f"Missing required parameter: '{param}'."
            code = "missing_required_parameter"
        else:
            msg = f"Invalid value for '{param}': {first.get('msg', 'invalid')}."
            code = "invalid_value"
        raise bad_request(msg, code=code, param=param) from None


def authorize_model(ctx: RequestContext, keyring: Keyring) -> None:
    """The key's model allow-list, then the alias → pinned version written into the body."""
    requested = ctx.model
    ctx.requested_model = requested
    allowed = ctx.principal.models
    if allowed and requested not in allowed:
        raise ProxyError(
            404,
            f"The model '{requested}' does not exist or your key does not have access to it.",
            code="model_not_found",
            param="model",
        )
    pinned = keyring.pin(requested)
    ctx.upstream_model = pinned
    if pinned != requested:
        ctx.replace_body({**ctx.body, "model": pinned})


async def intake(
    request: web.Request, route: Route, rules: Ruleset, request_id: str, timeout_s: float
) -> RequestContext:
    principal = authenticate(request, rules.keyring)
    server = rules.pipeline.server
    raw = await read_body(request, server.max_body_bytes, timeout_s)
    body = parse_json(raw, server.max_json_depth)
    validate(route, body)
    ctx = RequestContext(
        request_id=request_id, route=route, principal=principal, body=body, raw=raw, stream=bool(body.get("stream"))
    )
    if route is Route.EMBEDDINGS:
        ctx.stream = False
    authorize_model(ctx, rules.keyring)
    return ctx
