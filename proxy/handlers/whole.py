"""Response guards on a whole (non-stream) answer; the upstream bytes pass unchanged when no guard changes them."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from proxy.context import RequestContext, Route
from proxy.errors import upstream_error
from proxy.pipeline.runner import ResponseSlot
from proxy.streaming.channel import OutputChannel, open_watches
from proxy.streaming.chunks import usage_from
from proxy.verdicts import Block, Substitute


@dataclass(slots=True)
class Site:
    """One output text in a response body, and how to write it back."""

    text: str
    put: Callable[[str], None]
    finish: Callable[[str], None] | None = None
    counts: bool = True  # assistant text (counted for settling) rather than tool arguments


def _setter(obj: dict[str, Any], key: str) -> Callable[[str], None]:
    def put(value: str) -> None:
        obj[key] = value

    return put


def sites(route: Route, body: dict[str, Any]) -> list[Site]:
    found: list[Site] = []
    if route in (Route.CHAT, Route.COMPLETIONS):
        for choice in body.get("choices") or []:
            if not isinstance(choice, dict):
                continue
            fin = _setter(choice, "finish_reason")
            holder = choice.get("message") if route is Route.CHAT else choice
            key = "content" if route is Route.CHAT else "text"
            if isinstance(holder, dict) and isinstance(holder.get(key), str):
                found.append(Site(holder[key], _setter(holder, key), fin))
            for call in (holder or {}).get("tool_calls") or [] if route is Route.CHAT else []:
                fn = call.get("function") if isinstance(call, dict) else None
                if isinstance(fn, dict) and isinstance(fn.get("arguments"), str):
                    found.append(Site(fn["arguments"], _setter(fn, "arguments"), fin, counts=False))
    elif route is Route.RESPONSES:
        for item in body.get("output") or []:
            if not isinstance(item, dict):
                continue
            if isinstance(item.get("arguments"), str):
                found.append(Site(item["arguments"], _setter(item, "arguments"), counts=False))
            for part in item.get("content") or []:
                if isinstance(part, dict) and part.get("type") == "output_text" and isinstance(part.get("text"), str):
                    found.append(Site(part["text"], _setter(part, "text")))
    return found


async def guard_whole(ctx: RequestContext, slots: tuple[ResponseSlot, ...], raw: bytes) -> tuple[bytes, Block | None]:
    try:
        body = json.loads(raw)
    except ValueError:
        raise upstream_error(502, "The upstream answered with invalid JSON.", "upstream_bad_response") from None
    if not isinstance(body, dict):
        raise upstream_error(502, "The upstream answered with unexpected JSON.", "upstream_bad_response")
    ctx.usage = usage_from(body)
    found = sites(ctx.route, body)
    ctx.output_chars += sum(len(s.text) for s in found if s.counts)
    if not slots:
        return raw, None
    changed = False
    for site in found:
        channel = OutputChannel(ctx, open_watches(slots, ctx), window=0)
        released, ending = channel.push(site.text)
        rest = ""
        if ending is None:
            rest, ending = await channel.close()
        if isinstance(ending, Block):
            return raw, ending
        if isinstance(ending, Substitute):
            site.put(ending.text)
            if site.finish is not None:
                site.finish(ending.finish_reason)
            changed = True
            continue
        if released + rest != site.text:
            site.put(released + rest)
            changed = True
    if changed and ctx.route is Route.RESPONSES:
        body.pop("output_text", None)
    return (json.dumps(body, ensure_ascii=False).encode() if changed else raw), None
