"""A scriptable fake OpenAI server: records what it receives, answers (or misbehaves) on cue.

Used by the tests, the benchmarks and the README demo. Not a fake of the proxy: a
stand-in for the model provider.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

# "reset_before_headers" | "reset_after_headers" | "truncate" | "invalid_json" | "wrong_content_type" | "oversized"
Fault = str


@dataclass
class Reply:
    text: str | None = None  # None: echo "You said: <last user text>"
    chunks: list[str] | None = None  # stream pieces (default: the text split in ~4-char pieces)
    tool_calls: list[dict[str, str]] | None = None  # [{"name": ..., "arguments": "..."}]
    status: int = 200
    error: dict[str, Any] | None = None  # body for status >= 400
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0  # before the response headers
    chunk_delay_s: float = 0.0  # between stream chunks
    fault: Fault | None = None
    usage: tuple[int, int] | None = None
    # Build the answer from the request body (e.g. echo a secret planted in the system
    # prompt): a string, or a list of stream pieces. Overrides ``text`` and ``chunks``.
    render: Callable[[dict[str, Any]], str | list[str]] | None = None


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


def _last_user(body: dict[str, Any]) -> str:
    for msg in reversed(body.get("messages") or []):
        if isinstance(msg, dict) and msg.get("role") == "user":
            c = msg.get("content")
            if isinstance(c, str):
                return c
            if isinstance(c, list):
                return " ".join(p.get("text", "") for p in c if isinstance(p, dict))
    inp = body.get("input", body.get("prompt", ""))
    if isinstance(inp, list):
        last = inp[-1] if inp else ""
        if isinstance(last, dict):
            c = last.get("content", "")
            return c if isinstance(c, str) else " ".join(p.get("text", "") for p in c if isinstance(p, dict))
        return str(last)
    return str(inp)


def _pieces(text: str, size: int = 4) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


class FakeUpstream:
    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.queue: deque[Reply] = deque()
        self.default = Reply()
        self.disconnects = 0  # streams the proxy cut off before they finished
        self.completed_streams = 0
        self.sent: list[bytes] = []  # bodies of whole (non-stream) answers, as sent
        self.url = ""
        self._runner: web.AppRunner | None = None
        self.app = web.Application(client_max_size=64 * 1024 * 1024)
        self.app.router.add_route("*", "/v1/{tail:.*}", self._handle)

    def script(self, *replies: Reply) -> None:
        self.queue.extend(replies)

    def reset(self) -> None:
        self.requests.clear()
        self.queue.clear()
        self.default = Reply()
        self.disconnects = 0
        self.completed_streams = 0
        self.sent.clear()

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self._runner = web.AppRunner(self.app, access_log=None, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        sock = site._server.sockets[0]  # type: ignore[union-attr]
        self.url = f"http://{host}:{sock.getsockname()[1]}/v1"
        return self.url

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        self.requests.append(Recorded(request.method, request.path, dict(request.headers), raw))
        reply = self.queue.popleft() if self.queue else self.default
        if reply.delay_s:
            await asyncio.sleep(reply.delay_s)
        if reply.fault == "reset_before_headers":
            assert request.transport is not None
            request.transport.close()
            return web.Response()
        if reply.status >= 400:
            err = reply.error or {"error": {"message": "upstream says no", "type": "server_error", "code": None}}
            return web.json_response(err, status=reply.status, headers=reply.headers)
        body = json.loads(raw) if raw else {}
        tail = request.match_info["tail"]
        if reply.render is not None:
            made = reply.render(body)
            pieces = [made] if isinstance(made, str) else list(made)
            reply = dataclasses.replace(reply, text="".join(pieces), chunks=pieces, render=None)
        if tail == "models":
            return web.json_response({"object": "list", "data": [{"id": "gpt-4o-mini", "object": "model"}]})
        if tail == "embeddings":
            return self._embeddings(body)
        text = reply.text if reply.text is not None else f"You said: {_last_user(body)}"
        if reply.fault == "wrong_content_type":
            return web.Response(text=text, content_type="text/html")
        if reply.fault == "invalid_json":
            return web.Response(body=b'{"id": "x", "choices": [', content_type="application/json")
        if reply.fault == "oversized":
            text = "x" * (65 * 1024 * 1024)
        if body.get("stream"):
            return await self._stream(request, tail, body, text, reply)
        answer = json.dumps(self._whole(tail, body, text, reply)).encode()
        self.sent.append(answer)
        return web.Response(body=answer, content_type="application/json", headers=reply.headers)

    def _usage(self, body: dict[str, Any], text: str, reply: Reply) -> tuple[int, int]:
        if reply.usage:
            return reply.usage
        return max(1, len(json.dumps(body.get("messages", body.get("input", body.get("prompt", ""))))) // 4), max(
            1, len(text) // 4
        )

    def _embeddings(self, body: dict[str, Any]) -> web.Response:
        inputs = body.get("input")
        items = inputs if isinstance(inputs, list) else [inputs]
        data = [
            {"object": "embedding", "index": i, "embedding": [((hash(str(x)) >> k) % 100) / 100 for k in range(8)]}
            for i, x in enumerate(items)
        ]
        return web.json_response(
            {
                "object": "list",
                "data": data,
                "model": body.get("model"),
                "usage": {"prompt_tokens": len(items), "total_tokens": len(items)},
            }
        )

    def _whole(self, tail: str, body: dict[str, Any], text: str, reply: Reply) -> dict[str, Any]:
        p, c = self._usage(body, text, reply)
        model = body.get("model", "unknown")
        if tail == "responses":
            return {
                "id": "resp_fake",
                "object": "response",
                "created_at": int(time.time()),
                "model": model,
                "status": "completed",
                "output": [
                    {
                        "id": "msg_fake",
                        "type": "message",
                        "role": "assistant",
                        "status": "completed",
                        "content": [{"type": "output_text", "text": text, "annotations": []}],
                    }
                ],
                "usage": {"input_tokens": p, "output_tokens": c, "total_tokens": p + c},
            }
        usage = {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}
        if tail == "completions":
            return {
                "id": "cmpl-fake",
                "object": "text_completion",
                "created": int(time.time()),
                "model": model,
                "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": "stop"}],
                "usage": usage,
            }
        message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None}
        finish = "stop"
        if reply.tool_calls:
            message["content"] = None
            message["tool_calls"] = [
                {"id": f"call_{i}", "type": "function", "function": {"name": t["name"], "arguments": t["arguments"]}}
                for i, t in enumerate(reply.tool_calls)
            ]
            finish = "tool_calls"
        return {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
            "usage": usage,
        }

    def _events(self, tail: str, body: dict[str, Any], text: str, reply: Reply) -> list[bytes]:
        pieces = reply.chunks if reply.chunks is not None else _pieces(text)
        p, c = self._usage(body, text, reply)
        model = body.get("model", "unknown")
        if tail == "responses":
            return _responses_events(model, pieces, p, c)
        base = {"id": "chatcmpl-fake", "created": int(time.time()), "model": model}
        if tail == "completions":
            out = [
                {**base, "object": "text_completion", "choices": [{"index": 0, "text": t, "finish_reason": None}]}
                for t in pieces
            ]
            out.append(
                {**base, "object": "text_completion", "choices": [{"index": 0, "text": "", "finish_reason": "stop"}]}
            )
        else:
            obj = {**base, "object": "chat.completion.chunk"}
            out = [
                {**obj, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]}
            ]
            if reply.tool_calls:
                for i, t in enumerate(reply.tool_calls):
                    out.append(
                        {
                            **obj,
                            "choices": [
                                {
                                    "index": 0,
                                    "delta": {
                                        "tool_calls": [
                                            {
                                                "index": i,
                                                "id": f"call_{i}",
                                                "type": "function",
                                                "function": {"name": t["name"], "arguments": ""},
                                            }
                                        ]
                                    },
                                    "finish_reason": None,
                                }
                            ],
                        }
                    )
                    for piece in _pieces(t["arguments"]):
                        out.append(
                            {
                                **obj,
                                "choices": [
                                    {
                                        "index": 0,
                                        "delta": {"tool_calls": [{"index": i, "function": {"arguments": piece}}]},
                                        "finish_reason": None,
                                    }
                                ],
                            }
                        )
                finish = "tool_calls"
            else:
                out += [
                    {**obj, "choices": [{"index": 0, "delta": {"content": t}, "finish_reason": None}]} for t in pieces
                ]
                finish = "stop"
            out.append({**obj, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
        if (body.get("stream_options") or {}).get("include_usage"):
            for o in out:
                o["usage"] = None
            out.append(
                {
                    **base,
                    "object": out[0]["object"],
                    "choices": [],
                    "usage": {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c},
                }
            )
        frames = [b"data: " + json.dumps(o).encode() + b"\n\n" for o in out]
        return [*frames, b"data: [DONE]\n\n"]

    async def _stream(
        self, request: web.Request, tail: str, body: dict[str, Any], text: str, reply: Reply
    ) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", **reply.headers})
        await resp.prepare(request)
        frames = self._events(tail, body, text, reply)
        if reply.fault == "truncate":
            frames = frames[: max(1, len(frames) // 2)]
        try:
            for i, f in enumerate(frames):
                if reply.fault == "reset_after_headers" and i == 2:
                    assert request.transport is not None
                    request.transport.close()
                    return resp
                await resp.write(f)
                if reply.chunk_delay_s:
                    await asyncio.sleep(reply.chunk_delay_s)
            await resp.write_eof()
            self.completed_streams += 1
        except (ConnectionResetError, asyncio.CancelledError):
            self.disconnects += 1
            raise
        return resp


def _responses_events(model: str, pieces: list[str], p: int, c: int) -> list[bytes]:
    text = "".join(pieces)
    item = {
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    }
    resp = {
        "id": "resp_fake",
        "object": "response",
        "created_at": int(time.time()),
        "model": model,
        "status": "in_progress",
        "output": [],
    }
    ids = {"item_id": "msg_fake", "output_index": 0, "content_index": 0}
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": resp},
        {
            "type": "response.output_item.added",
            "output_index": 0,
            "item": {**item, "content": [], "status": "in_progress"},
        },
        {"type": "response.content_part.added", **ids, "part": {"type": "output_text", "text": "", "annotations": []}},
        *({"type": "response.output_text.delta", **ids, "delta": t} for t in pieces),
        {"type": "response.output_text.done", **ids, "text": text},
        {"type": "response.content_part.done", **ids, "part": item["content"][0]},
        {"type": "response.output_item.done", "output_index": 0, "item": item},
        {
            "type": "response.completed",
            "response": {
                **resp,
                "status": "completed",
                "output": [item],
                "usage": {"input_tokens": p, "output_tokens": c, "total_tokens": p + c},
            },
        },
    ]
    return [
        f"event: {e['type']}\ndata: {json.dumps({**e, 'sequence_number': i})}\n\n".encode()
        for i, e in enumerate(events)
    ]
