"""One output text channel held back behind the response guards.

Text reaches the client only after every scanner has seen it and ``window`` more
characters have arrived behind it (so a pattern up to ``window`` long is judged before
any of it leaves). Each scanner sees each piece once: cost per chunk does not grow with
the length of the answer.

Besides ``release_point(pending_prefix)`` (relative: "of this text, release this much"),
a scanner may offer ``hold_from() -> int | None``: an absolute offset in the text it was
fed before which everything may leave (None: no opinion). That lets a scanner hold back
something that started in text it saw several chunks ago (a sentence, a URL) without
knowing how much the other scanners held.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from proxy.context import RequestContext
from proxy.pipeline.config import GuardEntry
from proxy.pipeline.guard import OutputScanner
from proxy.pipeline.runner import ResponseSlot, error_verdict
from proxy.verdicts import Allow, Block, Substitute, Verdict

Ending = Block | Substitute


@dataclass(frozen=True, slots=True)
class Watch:
    entry: GuardEntry
    scanner: OutputScanner


def open_watches(slots: tuple[ResponseSlot, ...], ctx: RequestContext) -> list[Watch]:
    out: list[Watch] = []
    for slot in slots:
        scanner = slot.guard.open(ctx)
        if scanner is not None:
            out.append(Watch(slot.entry, scanner))
    return out


class OutputChannel:
    def __init__(self, ctx: RequestContext, watches: list[Watch], window: int) -> None:
        self.ctx = ctx
        self.watches = watches
        self.window = window if watches else 0  # nothing watches this channel: no hold-back
        self.pending = ""
        self.released = 0  # characters of fed (untransformed) text released so far
        self._parts: list[str] = []
        self._holds = [h for w in watches if (h := getattr(w.scanner, "hold_from", None)) is not None]

    @property
    def text(self) -> str:
        return "".join(self._parts)

    def _judge(self, watch: Watch, verdict: Verdict, elapsed_ms: float, *, always: bool) -> Ending | None:
        enforced = watch.entry.mode == "enforce"
        if always or not isinstance(verdict, Allow):
            self.ctx.record(verdict, enforced=enforced, elapsed_ms=elapsed_ms, stage="response")
        if enforced and isinstance(verdict, Block | Substitute):
            return verdict
        return None

    def _transform(self, text: str) -> str:
        for w in self.watches:
            text = w.scanner.transform(text)
        return text

    def push(self, text: str) -> tuple[str, Ending | None]:
        """Take newly arrived text; return what may be released now, or the verdict that ends it."""
        self._parts.append(text)
        for w in self.watches:
            t0 = time.perf_counter()
            try:
                verdict = w.scanner.feed(text)
            except Exception as exc:
                verdict = error_verdict(w.entry, exc)
            ending = self._judge(w, verdict, (time.perf_counter() - t0) * 1000, always=False)
            if ending is not None:
                return "", ending
        self.pending += text
        cut = max(0, len(self.pending) - self.window)
        for hold in self._holds:
            at = hold()
            if at is not None:
                cut = min(cut, max(0, at - self.released))
        for w in self.watches:
            cut = min(cut, w.scanner.release_point(self.pending[:cut]))
        if cut <= 0:
            return "", None
        out, self.pending = self.pending[:cut], self.pending[cut:]
        self.released += cut
        return self._transform(out), None

    async def close(self) -> tuple[str, Ending | None]:
        """End of the channel: each scanner's final judgement, then release the rest."""
        full = self.text
        for w in self.watches:
            t0 = time.perf_counter()
            try:
                async with asyncio.timeout(w.entry.timeout_ms / 1000):
                    verdict = await w.scanner.finish(full)
            except Exception as exc:
                verdict = error_verdict(w.entry, exc)
            ending = self._judge(w, verdict, (time.perf_counter() - t0) * 1000, always=True)
            if ending is not None:
                return "", ending
        out, self.pending = self.pending, ""
        self.released += len(out)
        return self._transform(out), None

    def transform_whole(self, text: str) -> str:
        return self._transform(text)
