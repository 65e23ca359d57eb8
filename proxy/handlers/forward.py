"""The request path: intake → request guards → upstream → response guards → client."""

from __future__ import annotations

import json
import logging
import time
import uuid
from typing import Any

import aiohttp
from aiohttp import web

from proxy.context import RequestContext, Route
from proxy.errors import ProxyError, upstream_error
from proxy.handlers import synthetic
from proxy.handlers.explain import decision_headers
from proxy.handlers.intake import intake
from proxy.handlers.whole import guard_whole
from proxy.pipeline.runner import run_request_guards
from proxy.rules.ruleset import Ruleset
from proxy.runtime import RUNTIME, Runtime
from proxy.streaming.chunks import ChunkRelay
from proxy.streaming.events import EventRelay
from proxy.streaming.sse import SSEParser
from proxy.upstream.client import DROP_RESPONSE_HEADERS
from proxy.verdicts import Block, rule_ids

log = logging.getLogger("guardrail.forward")

PATHS = {
    Route.CHAT: "/chat/completions",
    Route.COMPLETIONS: "/completions",
    Route.RESPONSES: "/responses",
    Route.EMBEDDINGS: "/embeddings",
}
MAX_UPSTREAM_BODY = 64 * 1024 * 1024


def block_error(verdict: Block) -> ProxyError:
    ids = rule_ids(verdict)
    return ProxyError(
        verdict.status,
        verdict.message,
        type=verdict.type,
        code=verdict.code,
        headers=dict(verdict.headers),
        extra={"guard": verdict.guard, "rule_ids": ids} if ids else {"guard": verdict.guard},
    )


def upstream_body(ctx: RequestContext) -> bytes:
    """The bytes to forward: the client's own bytes unless a guard changed the request."""
    if ctx.stream and ctx.route in (Route.CHAT, Route.COMPLETIONS):
        opts = ctx.body.get("stream_options")
        if not (isinstance(opts, dict) and opts.get("include_usage")):
            # We need usage to settle budgets; the extra chunk is stripped on the way back.
            ctx.replace_body({**ctx.body, "stream_options": {**(opts or {}), "include_usage": True}})
            ctx.extras["core.strip_usage"] = True
    if not ctx.body_changed:
        return ctx.raw
    return json.dumps(ctx.body, ensure_ascii=False).encode()


def _passthrough_headers(resp: aiohttp.ClientResponse) -> dict[str, str]:
    return {
        k: v for k, v in resp.headers.items() if k.lower() not in DROP_RESPONSE_HEADERS and k.lower() != "content-type"
    }


async def _read_limited(resp: aiohttp.ClientResponse) -> bytes:
    if resp.content_length is not None and resp.content_length > MAX_UPSTREAM_BODY:
        raise upstream_error(502, "The upstream response is too large.", "upstream_bad_response")
    data = bytearray()
    async for chunk in resp.content.iter_any():
        data += chunk
        if len(data) > MAX_UPSTREAM_BODY:
            raise upstream_error(502, "The upstream response is too large.", "upstream_bad_response")
    return bytes(data)


async def _error_from_upstream(resp: aiohttp.ClientResponse) -> web.Response:
    """Upstream said no (4xx/5xx): pass its OpenAI-shaped error on, or wrap what it sent."""
    try:
        raw = await _read_limited(resp)
        payload = json.loads(raw)
        ok = isinstance(payload, dict) and isinstance(payload.get("error"), dict)
    except (ValueError, ProxyError, aiohttp.ClientError, TimeoutError):
        raw, ok = b"", False
    if ok:
        return web.Response(
            status=resp.status, body=raw, content_type="application/json", headers=_passthrough_headers(resp)
        )
    status = resp.status if resp.status < 500 else 502
    return upstream_error(status, f"The upstream model API answered HTTP {resp.status}.", "upstream_error").response()


async def _non_stream(
    rt: Runtime, rules: Ruleset, ctx: RequestContext, resp: aiohttp.ClientResponse
) -> web.StreamResponse:
    try:
        raw = await _read_limited(resp)
    except (aiohttp.ClientError, TimeoutError):
        raise upstream_error(
            502, "The upstream connection failed while reading the answer.", "upstream_bad_response"
        ) from None
    ctx.upstream_ms = (time.perf_counter() - ctx.upstream_started) * 1000
    out, blocked = await guard_whole(ctx, rules.response, raw)
    if blocked is not None:
        raise block_error(blocked)
    headers = {**_passthrough_headers(resp), **ctx.response_headers, **decision_headers(ctx)}
    ctx.status = resp.status
    return web.Response(status=resp.status, body=out, content_type="application/json", headers=headers)


async def _stream(
    request: web.Request, rules: Ruleset, ctx: RequestContext, resp: aiohttp.ClientResponse
) -> web.StreamResponse:
    window = rules.pipeline.stream.window_chars
    relay: ChunkRelay | EventRelay
    if ctx.route is Route.RESPONSES:
        relay = EventRelay(ctx, rules.response, window)
    else:
        relay = ChunkRelay(
            ctx,
            rules.response,
            window,
            chat=ctx.route is Route.CHAT,
            client_wants_usage=not ctx.extras.get("core.strip_usage", False),
        )
    parser = SSEParser()
    headers = {**_passthrough_headers(resp), **ctx.response_headers, **decision_headers(ctx)}
    headers["Content-Type"] = "text/event-stream; charset=utf-8"
    headers["Cache-Control"] = "no-cache"
    out = web.StreamResponse(status=200, headers=headers)
    await out.prepare(request)
    ctx.status = 200
    try:
        try:
            async for chunk in resp.content.iter_any():
                if ctx.ttft_ms is None:
                    ctx.ttft_ms = (time.perf_counter() - ctx.started) * 1000
                for ev in parser.feed(chunk):
                    frames = await relay.on_event(ev)
                    if frames:
                        await out.write(b"".join(frames))
                    if relay.ended:
                        break
                if relay.ended:
                    break
        except (
            aiohttp.ClientPayloadError,
            aiohttp.ClientResponseError,
            aiohttp.ServerDisconnectedError,
            aiohttp.ClientOSError,
            TimeoutError,
            ValueError,
        ) as exc:
            ctx.error_code = "upstream_timeout" if isinstance(exc, TimeoutError) else "upstream_stream_error"
        finally:
            resp.close()  # cancels the upstream call if it is still running
        ctx.upstream_ms = (time.perf_counter() - ctx.upstream_started) * 1000
        if not relay.ended:
            # Upstream stopped without a proper end: release what passed the guards, then say so.
            tail = await relay.finish()
            if tail:
                await out.write(b"".join(tail))
            if not relay.ended:
                ctx.error_code = ctx.error_code or "upstream_truncated"
                err = {
                    "error": {
                        "message": "The upstream stream ended before it was complete.",
                        "type": "upstream_error",
                        "code": ctx.error_code,
                    }
                }
                await out.write(b"data: " + json.dumps(err).encode() + b"\n\n")
        await out.write_eof()
    except ConnectionResetError:
        ctx.error_code = "client_disconnected"
        ctx.status = 499
    return out


async def handle(request: web.Request, route: Route) -> web.StreamResponse:
    rt = request.app[RUNTIME]
    rules = rt.rules.current
    assert rules is not None
    request_id = uuid.uuid4().hex
    ctx: RequestContext | None = None
    try:
        ctx = await intake(request, route, rules, request_id, rt.settings.client_timeout_s)
        ending = await run_request_guards(rules.request, ctx)
        if isinstance(ending, Block):
            raise block_error(ending)
        if ending is not None:
            return await synthetic.respond(request, ctx, ending)
        body = upstream_body(ctx)
        ctx.upstream_calls += 1
        ctx.upstream_started = time.perf_counter()
        resp = await rt.upstream.send("POST", PATHS[route], body, rt.upstream.headers_for(request.headers))
        if resp.status >= 400:
            try:
                r = await _error_from_upstream(resp)
            finally:
                resp.release()
            ctx.status = r.status
            ctx.error_code = "upstream_error"
            return r
        ctype = resp.headers.get("Content-Type", "")
        if ctx.stream and "text/event-stream" in ctype:
            return await _stream(request, rules, ctx, resp)
        try:
            if "json" not in ctype:
                raise upstream_error(
                    502,
                    f"The upstream answered with an unexpected content type ({ctype or 'none'}).",
                    "upstream_bad_response",
                )
            return await _non_stream(rt, rules, ctx, resp)
        finally:
            resp.release()
    except ProxyError as exc:
        if ctx is not None:
            ctx.status = exc.status
            ctx.error_code = exc.code
            exc.headers.update(decision_headers(ctx))
        return exc.response(request_id)
    finally:
        if ctx is not None:
            await _finish(rt, ctx)


async def _finish(rt: Runtime, ctx: RequestContext) -> None:
    for fn in ctx.finalizers:
        try:
            await fn(ctx)
        except Exception:
            log.exception("finalizer failed", extra={"request_id": ctx.request_id})
    for obs in rt.observers:
        try:
            obs.request_finished(ctx)
        except Exception:
            log.exception("observer failed", extra={"request_id": ctx.request_id})


def route_handler(route: Route) -> Any:
    async def handler(request: web.Request) -> web.StreamResponse:
        return await handle(request, route)

    return handler
