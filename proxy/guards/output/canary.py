"""Canary tokens: planted in each request's system prompt, never shown to the client.

The request guard appends a random marker to the system prompt (``Rewrite``). On the way
back the marker is stripped from everything the client sees; seeing it in the output at
all means the model repeated its system prompt, which is evidence of a leak. The
signal is used by ``score.py``; ``build_response`` is a stand-alone response guard for
deployments that want the canary without the anomaly score.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any

from proxy.context import RequestContext, Route
from proxy.guards.output.config import CanaryConfig, load
from proxy.guards.output.signals import BaseSignal
from proxy.messages import prompt_parts, with_texts
from proxy.pipeline.guard import BuildContext
from proxy.verdicts import Allow, Block, Flag, Hit, Rewrite, Verdict

EXTRA = "canary"  # ctx.extras key: the token planted for this request
RULE = "output.canary"


def new_token(cfg: CanaryConfig) -> str:
    return cfg.prefix + secrets.token_hex(cfg.hex_chars // 2 + cfg.hex_chars % 2)[: cfg.hex_chars]


def plant(route: Route, body: dict[str, Any], cfg: CanaryConfig, token: str) -> dict[str, Any] | None:
    """A copy of ``body`` with the marker in its system prompt, or None when there is none."""
    line = cfg.instruction.format(canary=token)
    system = [p for p in prompt_parts(route, body) if p.surface == "system"]
    if system:
        first = system[0]
        return with_texts(body, {first.path: f"{first.text}\n\n{line}"})
    if not cfg.insert_when_missing:
        return None
    if route is Route.CHAT and isinstance(body.get("messages"), list):
        return {**body, "messages": [{"role": "system", "content": line}, *body["messages"]]}
    if route is Route.RESPONSES and body.get("instructions") is None:
        return {**body, "instructions": line}
    return None


@dataclass(frozen=True, slots=True)
class CanaryGuard:
    """Request guard: plants the marker and remembers it in ``ctx.extras``."""

    cfg: CanaryConfig
    name: str = "canary"

    async def check(self, ctx: RequestContext) -> Verdict:
        if not self.cfg.enabled or ctx.route not in (Route.CHAT, Route.RESPONSES):
            return Allow(self.name)
        token = new_token(self.cfg)
        body = plant(ctx.route, ctx.body, self.cfg, token)
        if body is None:
            return Allow(self.name)
        ctx.extras[EXTRA] = token
        return Rewrite(self.name, body=body)


class CanarySignal(BaseSignal):
    """Finds the marker (case-insensitive, with or without its prefix), across chunks."""

    def __init__(self, token: str, prefix: str, score: float) -> None:
        self.full = token.lower()
        self.core = token[len(prefix) :].lower()
        self.score = score
        self._re = re.compile(rf"(?:{re.escape(prefix)})?{re.escape(self.core)}", re.IGNORECASE)
        self._tail = ""
        self._seen = 0
        self._reported = False

    def feed(self, text: str) -> list[Hit]:
        buf = self._tail + text
        at = buf.lower().find(self.core)
        self._tail = buf[-(len(self.core) - 1) :]
        start = self._seen - (len(buf) - len(text))
        self._seen += len(text)
        if at < 0 or self._reported:
            return []
        self._reported = True
        return [Hit(RULE, self.score, "canary", (start + at, start + at + len(self.core)), "output")]

    async def finish(self, text: str) -> list[Hit]:
        return []

    def transform(self, text: str) -> str:
        return self._re.sub("", text)

    def release_point(self, pending: str) -> int:
        """Never let the first half of a marker out before we know whether it is one."""
        low = pending[-len(self.full) :].lower()
        for k in range(min(len(low), len(self.full)), 0, -1):
            if low.endswith(self.full[:k]) or (k >= 4 and low.endswith(self.core[:k])):
                return len(pending) - k
        return len(pending)


@dataclass(frozen=True, slots=True)
class CanarySignals:
    """Factory used by ``score.py``."""

    cfg: CanaryConfig
    name: str = "canary"

    def open(self, ctx: RequestContext) -> CanarySignal | None:
        token = ctx.extras.get(EXTRA)
        if not self.cfg.enabled or not isinstance(token, str):
            return None
        return CanarySignal(token, self.cfg.prefix, self.cfg.score)


class CanaryScanner:
    """Stand-alone output scanner: strip always, block or flag on sight."""

    def __init__(self, signal: CanarySignal, action: str, guard: str) -> None:
        self.signal = signal
        self.action = action
        self.guard = guard

    def feed(self, text: str) -> Verdict:
        hits = tuple(self.signal.feed(text))
        if not hits:
            return Allow(self.guard)
        if self.action == "block":
            return Block(self.guard, "The answer repeated confidential instructions and was stopped.", hits)
        return Flag(self.guard, hits, "canary")

    async def finish(self, text: str) -> Verdict:
        return Allow(self.guard)

    def transform(self, text: str) -> str:
        return self.signal.transform(text)

    def release_point(self, pending: str) -> int:
        return self.signal.release_point(pending)


@dataclass(frozen=True, slots=True)
class CanaryResponseGuard:
    signals: CanarySignals
    name: str = "canary_output"

    def open(self, ctx: RequestContext) -> CanaryScanner | None:
        sig = self.signals.open(ctx)
        return None if sig is None else CanaryScanner(sig, self.signals.cfg.action, self.name)


def build(bc: BuildContext) -> CanaryGuard:
    _, cfg = load(bc.rules_dir, str(bc.options.get("file", "output.yaml")))
    return CanaryGuard(cfg.canary)


def build_response(bc: BuildContext) -> CanaryResponseGuard:
    _, cfg = load(bc.rules_dir, str(bc.options.get("file", "output.yaml")))
    return CanaryResponseGuard(CanarySignals(cfg.canary))
