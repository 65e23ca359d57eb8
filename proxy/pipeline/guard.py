"""The two small protocols every guard implements, and what a guard is built from."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from proxy.context import RequestContext
from proxy.verdicts import Verdict

if TYPE_CHECKING:
    from proxy.services import Services


@runtime_checkable
class RequestGuard(Protocol):
    """Runs before the request is forwarded."""

    name: str

    async def check(self, ctx: RequestContext) -> Verdict: ...


@runtime_checkable
class OutputScanner(Protocol):
    """Watches one output text channel (a choice's content, or a tool call's arguments).

    ``feed`` sees each newly arrived piece of text once (keep your own tail for patterns
    that straddle pieces, so the cost per chunk stays constant); ``finish`` sees the
    whole text once at the end; ``transform`` rewrites text on its way to the client
    (PII restore, canary removal); ``release_point`` says how much of the pending,
    not yet released text may leave now (e.g. never half a placeholder).
    """

    def feed(self, text: str) -> Verdict: ...

    async def finish(self, text: str) -> Verdict: ...

    def transform(self, text: str) -> str: ...

    def release_point(self, pending: str) -> int: ...


@runtime_checkable
class ResponseGuard(Protocol):
    """Runs on what the model answers; ``open`` returns None when it has nothing to do."""

    name: str

    def open(self, ctx: RequestContext) -> OutputScanner | None: ...


class PassScanner:
    """A scanner that allows everything: a base to override only what you need."""

    guard = "pass"

    def feed(self, text: str) -> Verdict:
        from proxy.verdicts import Allow

        return Allow(self.guard)

    async def finish(self, text: str) -> Verdict:
        from proxy.verdicts import Allow

        return Allow(self.guard)

    def transform(self, text: str) -> str:
        return text

    def release_point(self, pending: str) -> int:
        return len(pending)


@dataclass(frozen=True, slots=True)
class BuildContext:
    """What a guard factory receives: the rules directory, its options, shared services."""

    rules_dir: Path
    options: dict[str, Any] = field(default_factory=dict)
    services: Services | None = None
