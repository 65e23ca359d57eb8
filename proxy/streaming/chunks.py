"""Re-emitting chat/completions SSE chunks with their text held back behind the guards."""

from __future__ import annotations

import json
import time
from typing import Any

from proxy.context import RequestContext, Usage
from proxy.pipeline.runner import ResponseSlot
from proxy.streaming.channel import Ending, OutputChannel, open_watches
from proxy.streaming.sse import DONE, SSEEvent
from proxy.verdicts import Substitute


def dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def frame(obj: Any) -> bytes:
    return b"data: " + dumps(obj).encode() + b"\n\n"


def usage_from(obj: dict[str, Any]) -> Usage | None:
    u = obj.get("usage")
    if not isinstance(u, dict):
        return None
    prompt = u.get("prompt_tokens", u.get("input_tokens", 0)) or 0
    completion = u.get("completion_tokens", u.get("output_tokens", 0)) or 0
    return Usage(int(prompt), int(completion))


class ChunkRelay:
    """For ``chat.completion.chunk`` (text in ``delta.content``) and ``text_completion`` (``text``)."""

    def __init__(
        self,
        ctx: RequestContext,
        slots: tuple[ResponseSlot, ...],
        window: int,
        *,
        chat: bool,
        client_wants_usage: bool,
    ) -> None:
        self.ctx = ctx
        self.slots = slots
        self.window = window
        self.chat = chat
        self.client_wants_usage = client_wants_usage
        self.channels: dict[tuple[Any, ...], OutputChannel] = {}
        self.template: dict[str, Any] = {}
        self.indices: set[int] = set()
        self.passthrough = not slots
        self.ended = False

    def _channel(self, key: tuple[Any, ...]) -> OutputChannel:
        ch = self.channels.get(key)
        if ch is None:
            ch = self.channels[key] = OutputChannel(self.ctx, open_watches(self.slots, self.ctx), self.window)
        return ch

    def _chunk(self, index: int, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        choice: dict[str, Any] = {"index": index}
        if self.chat:
            choice["delta"] = delta
        else:
            choice["text"] = delta.get("content", "")
        choice["finish_reason"] = finish_reason
        base = {k: v for k, v in self.template.items() if k not in ("choices", "usage")} or {
            "id": f"chatcmpl-{self.ctx.request_id}" if self.chat else f"cmpl-{self.ctx.request_id}",
            "object": "chat.completion.chunk" if self.chat else "text_completion",
            "created": int(time.time()),
            "model": self.ctx.model,
        }
        return {**base, "choices": [choice]}

    async def on_event(self, ev: SSEEvent) -> list[bytes]:
        if ev.done:
            tail = await self.finish()
            if self.ended:
                return tail
            self.ended = True
            return [*tail, DONE]
        try:
            obj = json.loads(ev.data)
        except ValueError:
            return [ev.raw]  # not ours to judge; pass as is
        if not isinstance(obj, dict):
            return [ev.raw]
        if not self.template:
            self.template = obj
        usage = usage_from(obj)
        if usage is not None:
            self.ctx.usage = usage
        strip_usage = not self.client_wants_usage and "usage" in obj
        choices = obj.get("choices") or []
        if strip_usage and not choices:
            return []
        if self.passthrough:
            for c in choices:
                text = (c.get("delta") or {}).get("content") if self.chat else c.get("text")
                if isinstance(text, str):
                    self.ctx.output_chars += len(text)
            if strip_usage:
                del obj["usage"]
                return [frame(obj)]
            return [ev.raw]
        if strip_usage:
            del obj["usage"]
        out: list[bytes] = []
        kept: list[dict[str, Any]] = []
        for c in choices:
            ended = await self._choice(c, out, kept)
            if ended is not None:
                return out + self.terminate(ended)
        if choices and not kept and "usage" not in obj:
            return out
        obj["choices"] = kept
        out.append(frame(obj))
        return out

    async def _choice(self, c: dict[str, Any], out: list[bytes], kept: list[dict[str, Any]]) -> Ending | None:
        idx = int(c.get("index", 0))
        self.indices.add(idx)
        delta = c.get("delta") if self.chat else c
        delta = delta if isinstance(delta, dict) else {}
        key_text = "content" if self.chat else "text"
        emptied = False
        text = delta.get(key_text)
        if isinstance(text, str) and text:
            self.ctx.output_chars += len(text)
            released, ending = self._channel((idx, "c")).push(text)
            if ending is not None:
                return ending
            delta[key_text] = released
            emptied = not released
        calls = delta.get("tool_calls")
        if isinstance(calls, list):
            for tc in calls:
                fn = tc.get("function") if isinstance(tc, dict) else None
                if isinstance(fn, dict) and isinstance(fn.get("arguments"), str) and fn["arguments"]:
                    released, ending = self._channel((idx, "t", tc.get("index", 0))).push(fn["arguments"])
                    if ending is not None:
                        return ending
                    fn["arguments"] = released
            calls[:] = [
                tc for tc in calls if set(tc) - {"index", "function"} or (tc.get("function") or {}).get("arguments")
            ]
            if not calls:
                del delta["tool_calls"]
        if c.get("finish_reason") is not None:
            ending = await self._flush(idx, out)
            if ending is not None:
                return ending
        other = (
            set(delta) - {key_text, "tool_calls"} - ({"index", "finish_reason", "logprobs"} if not self.chat else set())
        )
        if emptied and not other and not delta.get("tool_calls") and c.get("finish_reason") is None:
            return None
        kept.append(c)
        return None

    async def _flush(self, idx: int, out: list[bytes]) -> Ending | None:
        for key, ch in list(self.channels.items()):
            if key[0] != idx:
                continue
            rest, ending = await ch.close()
            del self.channels[key]
            if ending is not None:
                return ending
            if rest:
                if key[1] == "c":
                    out.append(frame(self._chunk(idx, {"content": rest})))
                else:
                    call = {"index": key[2], "function": {"arguments": rest}}
                    out.append(frame(self._chunk(idx, {"tool_calls": [call]})))
        return None

    async def finish(self) -> list[bytes]:
        """Upstream ended (with or without [DONE]): flush what is still held back."""
        out: list[bytes] = []
        for idx in sorted({k[0] for k in self.channels}):
            ending = await self._flush(idx, out)
            if ending is not None:
                return out + self.terminate(ending)
        return out

    def terminate(self, verdict: Ending) -> list[bytes]:
        """End the stream well-formed after a guard stopped it."""
        self.channels.clear()
        self.ended = True
        out: list[bytes] = []
        indices = sorted(self.indices) or [0]
        if isinstance(verdict, Substitute):
            out.append(frame(self._chunk(indices[0], {"content": verdict.text})))
            reason = verdict.finish_reason
        else:
            reason = "content_filter"
        for idx in indices:
            out.append(frame(self._chunk(idx, {}, reason)))
        out.append(DONE)
        return out
