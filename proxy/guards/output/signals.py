"""The small protocol every output signal implements, per output channel.

A signal is opened for one channel (``open(ctx)``) and sees each new piece of text once
(``feed``, sync and cheap, keeping its own bounded tail), then the whole text once at the
end (``finish``, async, may run heavy work off the loop). It reports evidence only
(``Hit``s with a score in [0, 1]); ``score.py`` turns evidence into a verdict.
"""

from __future__ import annotations

from typing import Protocol

from proxy.context import RequestContext
from proxy.verdicts import Hit


class Signal(Protocol):
    def feed(self, text: str) -> list[Hit]: ...

    async def finish(self, text: str) -> list[Hit]: ...

    def transform(self, text: str) -> str: ...

    def release_point(self, pending: str) -> int: ...


class SignalFactory(Protocol):
    @property
    def name(self) -> str: ...

    def open(self, ctx: RequestContext) -> Signal | None: ...


class BaseSignal:
    """Defaults: no evidence, no change, release everything."""

    def feed(self, text: str) -> list[Hit]:
        return []

    async def finish(self, text: str) -> list[Hit]:
        return []

    def transform(self, text: str) -> str:
        return text

    def release_point(self, pending: str) -> int:
        return len(pending)
