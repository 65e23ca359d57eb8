"""Where the text of a request lives: one list of (surface, text, path) per route.

Guards that read or rewrite prompt text (injection, PII, approved answers) use this
instead of knowing each OpenAI request shape. ``path`` addresses the string inside the
JSON body so a guard can replace it with ``set_text``.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from proxy.context import Route

Surface = Literal["system", "user", "assistant", "tool", "tool_args", "prompt", "embedding_input"]
Path = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class PromptPart:
    surface: Surface
    text: str
    path: Path
    index: int  # message/item index in the conversation (0 for single prompts)


_ROLE_SURFACE: dict[str, Surface] = {
    "system": "system",
    "developer": "system",
    "user": "user",
    "assistant": "assistant",
    "tool": "tool",
    "function": "tool",
}

_TEXT_PART_TYPES = {"text", "input_text", "output_text"}


def _content_parts(content: Any, base: Path, surface: Surface, index: int) -> Iterator[PromptPart]:
    if isinstance(content, str):
        yield PromptPart(surface, content, base, index)
    elif isinstance(content, list):
        for j, part in enumerate(content):
            if isinstance(part, dict) and part.get("type") in _TEXT_PART_TYPES and isinstance(part.get("text"), str):
                yield PromptPart(surface, part["text"], (*base, j, "text"), index)


def _chat_parts(body: dict[str, Any]) -> Iterator[PromptPart]:
    messages = body.get("messages")
    if not isinstance(messages, list):
        return
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict):
            continue
        surface = _ROLE_SURFACE.get(str(msg.get("role")), "user")
        yield from _content_parts(msg.get("content"), ("messages", i, "content"), surface, i)
        for j, call in enumerate(msg.get("tool_calls") or []):
            fn = call.get("function") if isinstance(call, dict) else None
            if isinstance(fn, dict) and isinstance(fn.get("arguments"), str):
                yield PromptPart(
                    "tool_args", fn["arguments"], ("messages", i, "tool_calls", j, "function", "arguments"), i
                )


def _responses_parts(body: dict[str, Any]) -> Iterator[PromptPart]:
    if isinstance(body.get("instructions"), str):
        yield PromptPart("system", body["instructions"], ("instructions",), 0)
    inp = body.get("input")
    if isinstance(inp, str):
        yield PromptPart("user", inp, ("input",), 0)
        return
    if not isinstance(inp, list):
        return
    for i, item in enumerate(inp):
        if not isinstance(item, dict):
            continue
        kind = item.get("type", "message")
        if kind == "message" or "role" in item:
            surface = _ROLE_SURFACE.get(str(item.get("role")), "user")
            yield from _content_parts(item.get("content"), ("input", i, "content"), surface, i)
        elif kind == "function_call_output" and isinstance(item.get("output"), str):
            yield PromptPart("tool", item["output"], ("input", i, "output"), i)
        elif kind == "function_call" and isinstance(item.get("arguments"), str):
            yield PromptPart("tool_args", item["arguments"], ("input", i, "arguments"), i)


def _list_or_str(body: dict[str, Any], key: str, surface: Surface) -> Iterator[PromptPart]:
    value = body.get(key)
    if isinstance(value, str):
        yield PromptPart(surface, value, (key,), 0)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            if isinstance(item, str):
                yield PromptPart(surface, item, (key, i), i)


def prompt_parts(route: Route, body: dict[str, Any]) -> list[PromptPart]:
    """Every piece of text in a request, in conversation order."""
    if route is Route.CHAT:
        return list(_chat_parts(body))
    if route is Route.RESPONSES:
        return list(_responses_parts(body))
    if route is Route.COMPLETIONS:
        return list(_list_or_str(body, "prompt", "prompt"))
    return list(_list_or_str(body, "input", "embedding_input"))


def last_user_text(route: Route, body: dict[str, Any]) -> str | None:
    """The newest user turn (what an approved answer is matched against)."""
    parts = [p for p in prompt_parts(route, body) if p.surface in ("user", "prompt")]
    if not parts:
        return None
    last = parts[-1].index
    return "\n".join(p.text for p in parts if p.index == last)


def set_text(body: dict[str, Any], path: Path, text: str) -> None:
    """Replace the string at ``path`` in place."""
    target: Any = body
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = text


def with_texts(body: dict[str, Any], changes: dict[Path, str]) -> dict[str, Any]:
    """A copy of ``body`` with the strings at the given paths replaced."""
    new = copy.deepcopy(body)
    for path, text in changes.items():
        set_text(new, path, text)
    return new
