"""Complete OpenAI responses made by the proxy itself (approved answers, refusals)."""

from __future__ import annotations

import json
import time
from typing import Any

from aiohttp import web

from proxy.context import RequestContext, Route
from proxy.handlers.explain import decision_headers
from proxy.streaming.chunks import dumps, frame
from proxy.streaming.sse import DONE, encode
from proxy.verdicts import Substitute


def _usage(route: Route) -> dict[str, int]:
    if route is Route.RESPONSES:
        return {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0}
    return {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}


def whole(ctx: RequestContext, sub: Substitute) -> dict[str, Any]:
    created = int(time.time())
    rid = ctx.request_id
    if ctx.route is Route.CHAT:
        return {
            "id": f"chatcmpl-{rid}",
            "object": "chat.completion",
            "created": created,
            "model": ctx.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": sub.text, "refusal": None},
                    "logprobs": None,
                    "finish_reason": sub.finish_reason,
                }
            ],
            "usage": _usage(ctx.route),
        }
    if ctx.route is Route.COMPLETIONS:
        return {
            "id": f"cmpl-{rid}",
            "object": "text_completion",
            "created": created,
            "model": ctx.model,
            "choices": [{"index": 0, "text": sub.text, "logprobs": None, "finish_reason": sub.finish_reason}],
            "usage": _usage(ctx.route),
        }
    incomplete = sub.finish_reason == "content_filter"
    return {
        "id": f"resp_{rid}",
        "object": "response",
        "created_at": created,
        "model": ctx.model,
        "status": "incomplete" if incomplete else "completed",
        "incomplete_details": {"reason": "content_filter"} if incomplete else None,
        "output": [
            {
                "id": f"msg_{rid}",
                "type": "message",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": sub.text, "annotations": []}],
            }
        ],
        "usage": _usage(ctx.route),
    }


def _chat_stream(ctx: RequestContext, sub: Substitute, body: dict[str, Any]) -> list[bytes]:
    base = {k: body[k] for k in ("id", "created", "model")}
    obj = "chat.completion.chunk" if ctx.route is Route.CHAT else "text_completion"

    def chunk(delta: dict[str, Any], finish: str | None) -> bytes:
        if ctx.route is Route.CHAT:
            choice: dict[str, Any] = {"index": 0, "delta": delta, "finish_reason": finish}
        else:
            choice = {"index": 0, "text": delta.get("content", ""), "finish_reason": finish}
        return frame({**base, "object": obj, "choices": [choice]})

    out = [
        chunk({"role": "assistant", "content": ""}, None),
        chunk({"content": sub.text}, None),
        chunk({}, sub.finish_reason),
    ]
    opts = ctx.body.get("stream_options")
    if isinstance(opts, dict) and opts.get("include_usage"):
        out.append(frame({**base, "object": obj, "choices": [], "usage": _usage(ctx.route)}))
    out.append(DONE)
    return out


def _responses_stream(body: dict[str, Any]) -> list[bytes]:
    item = body["output"][0]
    part = item["content"][0]
    start = {**body, "status": "in_progress", "output": []}
    seq = iter(range(1_000))
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": start},
        {
            "type": "response.output_item.added",
            "output_index": 0,
            "item": {**item, "content": [], "status": "in_progress"},
        },
        {
            "type": "response.content_part.added",
            "item_id": item["id"],
            "output_index": 0,
            "content_index": 0,
            "part": {**part, "text": ""},
        },
        {
            "type": "response.output_text.delta",
            "item_id": item["id"],
            "output_index": 0,
            "content_index": 0,
            "delta": part["text"],
        },
        {
            "type": "response.output_text.done",
            "item_id": item["id"],
            "output_index": 0,
            "content_index": 0,
            "text": part["text"],
        },
        {
            "type": "response.content_part.done",
            "item_id": item["id"],
            "output_index": 0,
            "content_index": 0,
            "part": part,
        },
        {"type": "response.output_item.done", "output_index": 0, "item": item},
        {"type": "response.incomplete" if body["status"] == "incomplete" else "response.completed", "response": body},
    ]
    return [encode(dumps({**e, "sequence_number": next(seq)}), e["type"]) for e in events]


async def respond(request: web.Request, ctx: RequestContext, sub: Substitute) -> web.StreamResponse:
    headers = {**ctx.response_headers, **decision_headers(ctx), **sub.headers, "x-request-id": ctx.request_id}
    body = whole(ctx, sub)
    ctx.status = 200
    if not ctx.stream:
        return web.Response(body=json.dumps(body).encode(), content_type="application/json", headers=headers)
    resp = web.StreamResponse(headers={**headers, "Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await resp.prepare(request)
    frames = _responses_stream(body) if ctx.route is Route.RESPONSES else _chat_stream(ctx, sub, body)
    await resp.write(b"".join(frames))
    await resp.write_eof()
    return resp
