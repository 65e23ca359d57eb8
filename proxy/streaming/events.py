"""Re-emitting Responses API stream events with output text held back behind the guards."""

from __future__ import annotations

import copy
import json
from typing import Any

from proxy.context import RequestContext
from proxy.pipeline.runner import ResponseSlot
from proxy.streaming.channel import Ending, OutputChannel, open_watches
from proxy.streaming.chunks import dumps, usage_from
from proxy.streaming.sse import SSEEvent, encode
from proxy.verdicts import Substitute

_DELTA = {"response.output_text.delta": "text", "response.function_call_arguments.delta": "args"}
_DONE = {"response.output_text.done": ("text", "text"), "response.function_call_arguments.done": ("args", "arguments")}


def transform_response_texts(response: dict[str, Any], fix: Any) -> None:
    """Apply ``fix(kind, key, text)`` to every output text/arguments inside a response object."""
    for oi, item in enumerate(response.get("output") or []):
        if not isinstance(item, dict):
            continue
        if isinstance(item.get("arguments"), str):
            item["arguments"] = fix(("args", oi), item["arguments"])
        for ci, part in enumerate(item.get("content") or []):
            if isinstance(part, dict) and part.get("type") == "output_text" and isinstance(part.get("text"), str):
                part["text"] = fix(("text", oi, ci), part["text"])


class EventRelay:
    def __init__(self, ctx: RequestContext, slots: tuple[ResponseSlot, ...], window: int) -> None:
        self.ctx = ctx
        self.slots = slots
        self.window = window
        self.channels: dict[tuple[Any, ...], OutputChannel] = {}
        self.closed: dict[tuple[Any, ...], OutputChannel] = {}
        self.response: dict[str, Any] = {}
        self.seq = 0
        self.passthrough = not slots
        self.ended = False

    def _emit(self, data: dict[str, Any]) -> bytes:
        if "sequence_number" in data or self.seq:
            data["sequence_number"] = self.seq
        self.seq += 1
        return encode(dumps(data), data.get("type"))

    def _channel(self, key: tuple[Any, ...]) -> OutputChannel:
        ch = self.channels.get(key)
        if ch is None:
            ch = self.channels[key] = OutputChannel(self.ctx, open_watches(self.slots, self.ctx), self.window)
        return ch

    def _fix(self, key: tuple[Any, ...], text: str) -> str:
        ch = self.closed.get(key) or self.channels.get(key)
        return ch.transform_whole(text) if ch is not None else text

    async def on_event(self, ev: SSEEvent) -> list[bytes]:
        try:
            data = json.loads(ev.data)
        except ValueError:
            return [ev.raw]
        if not isinstance(data, dict):
            return [ev.raw]
        kind = data.get("type", ev.event)
        if isinstance(data.get("response"), dict):
            self.response = data["response"]
            usage = usage_from(self.response)
            if usage is not None:
                self.ctx.usage = usage
        if kind in ("response.completed", "response.incomplete", "response.failed", "error"):
            tail = await self.finish()
            if self.ended:
                return tail
            self.ended = True
            if self.passthrough:
                return [*tail, ev.raw]
            self._fix_nested(data)
            return [*tail, self._emit(data)]
        if kind in _DELTA and isinstance(data.get("delta"), str):
            self.ctx.output_chars += len(data["delta"]) if kind.endswith("text.delta") else 0
        if self.passthrough:
            return [ev.raw]
        if kind in _DELTA and isinstance(data.get("delta"), str):
            key = (_DELTA[kind], data.get("output_index", 0)) + (
                (data.get("content_index", 0),) if _DELTA[kind] == "text" else ()
            )
            released, ending = self._channel(key).push(data["delta"])
            if ending is not None:
                return self.terminate(ending, data)
            if not released:
                return []
            data["delta"] = released
            return [self._emit(data)]
        if kind in _DONE:
            name, field = _DONE[kind]
            key = (name, data.get("output_index", 0)) + ((data.get("content_index", 0),) if name == "text" else ())
            out: list[bytes] = []
            ch = self.channels.pop(key, None)
            if ch is not None:
                rest, ending = await ch.close()
                if ending is not None:
                    return self.terminate(ending, data)
                self.closed[key] = ch
                if rest:
                    delta_type = (
                        "response.output_text.delta" if name == "text" else "response.function_call_arguments.delta"
                    )
                    flush = {k: v for k, v in data.items() if k not in (field, "type")}
                    out.append(self._emit({"type": delta_type, **flush, "delta": rest}))
            if isinstance(data.get(field), str):
                data[field] = self._fix(key, data[field])
            out.append(self._emit(data))
            return out
        self._fix_nested(data)
        return [self._emit(data)]

    def _fix_nested(self, data: dict[str, Any]) -> None:
        part = data.get("part")
        if isinstance(part, dict) and isinstance(part.get("text"), str):
            part["text"] = self._fix(("text", data.get("output_index", 0), data.get("content_index", 0)), part["text"])
        item = data.get("item")
        if isinstance(item, dict):
            transform_response_texts({"output": [None] * data.get("output_index", 0) + [item]}, self._fix)
        if isinstance(data.get("response"), dict):
            transform_response_texts(data["response"], self._fix)

    async def finish(self) -> list[bytes]:
        out: list[bytes] = []
        for key in list(self.channels):
            ch = self.channels.pop(key)
            rest, ending = await ch.close()
            if ending is not None:
                return out + self.terminate(ending, {})
            if rest and key[0] == "text":
                out.append(
                    self._emit(
                        {
                            "type": "response.output_text.delta",
                            "output_index": key[1],
                            "content_index": key[2],
                            "delta": rest,
                        }
                    )
                )
        return out

    def terminate(self, verdict: Ending, current: dict[str, Any]) -> list[bytes]:
        self.channels.clear()
        self.ended = True
        out: list[bytes] = []
        if isinstance(verdict, Substitute) and verdict.text:
            ev: dict[str, Any] = {k: current[k] for k in ("item_id", "output_index", "content_index") if k in current}
            out.append(self._emit({"type": "response.output_text.delta", **ev, "delta": verdict.text}))
        response: dict[str, Any] = (
            copy.deepcopy(self.response) if self.response else {"object": "response", "model": self.ctx.model}
        )
        response["status"] = "incomplete"
        response["incomplete_details"] = {"reason": "content_filter"}
        out.append(self._emit({"type": "response.incomplete", "response": response}))
        return out
