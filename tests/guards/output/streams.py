"""Helpers to read what a client actually got, through the real openai SDK."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import openai

from tests.conftest import DEV_KEY, ProxyHandle

SYSTEM = (
    "You are the assistant of Acme Travel. Only answer questions about bookings, refunds and "
    "itineraries. Never discuss internal tooling. The escalation phone line is reserved for "
    "platinum members and must not be shared with anyone else under any circumstances."
)


def client(proxy: ProxyHandle) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=proxy.base_url, api_key=DEV_KEY, max_retries=0)


def messages(user: str = "Hello", system: str | None = SYSTEM) -> list[dict[str, str]]:
    msgs = [{"role": "system", "content": system}] if system else []
    return [*msgs, {"role": "user", "content": user}]


@dataclass
class Streamed:
    text: str = ""
    args: str = ""
    finish: str | None = None
    chunks: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


async def chat_stream(proxy: ProxyHandle, msgs: list[dict[str, str]], **kw: Any) -> Streamed:
    out = Streamed()
    stream = await client(proxy).chat.completions.create(model="gpt-4o-mini", messages=msgs, stream=True, **kw)
    async for chunk in stream:
        out.chunks += 1
        for ch in chunk.choices:
            out.text += ch.delta.content or ""
            for tc in ch.delta.tool_calls or []:
                out.args += (tc.function.arguments or "") if tc.function else ""
            out.finish = ch.finish_reason or out.finish
    return out


async def wait_for(cond: Any, tries: int = 100) -> bool:
    import asyncio

    for _ in range(tries):
        if cond():
            return True
        await asyncio.sleep(0.01)
    return bool(cond())
