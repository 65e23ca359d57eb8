"""The shadow response guard: picks sampled requests and collects the main answer.

It never changes or delays the answer. ``open`` decides once per request (first
matching rule of ``rules/shadow.yaml``, deterministic sampling by request id) and
leaves a ``ShadowTicket`` in ``ctx.extras``; each scanner's ``finish`` adds the text
it saw (the upstream's text, before any PII restore). The shadow observer installed
by ``proxy.shadow.install`` hands finished tickets to the bounded background queue.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from proxy.context import RequestContext
from proxy.pipeline.guard import BuildContext, OutputScanner, PassScanner
from proxy.shadow.config import Candidate, ShadowFile, ShadowRule, load_shadow
from proxy.verdicts import Allow, Verdict

EXTRAS_KEY = "shadow"


@dataclass(slots=True)
class ShadowTicket:
    """A request chosen for shadowing: what to send the candidate, and what the main model said."""

    config: ShadowFile
    rule: ShadowRule
    candidate: Candidate
    # The request as forwarded upstream (after redacting guards). Guards replace ctx.body,
    # they never mutate it, so holding the reference is safe and copies nothing.
    body: dict[str, Any]
    texts: list[str] = field(default_factory=list)

    @property
    def main_text(self) -> str:
        return "\n".join(t for t in self.texts if t)


class _Collect(PassScanner):
    guard = "shadow"

    def __init__(self, ticket: ShadowTicket) -> None:
        self.ticket = ticket

    async def finish(self, text: str) -> Verdict:
        self.ticket.texts.append(text)
        return Allow(self.guard)


@dataclass(frozen=True, slots=True)
class ShadowGuard:
    config: ShadowFile
    name: str = "shadow"

    def open(self, ctx: RequestContext) -> OutputScanner | None:
        ticket = ctx.extras.get(EXTRAS_KEY, False)
        if ticket is False:  # first channel of this request: decide once
            ticket = self._ticket(ctx)
            ctx.extras[EXTRAS_KEY] = ticket
        return _Collect(ticket) if isinstance(ticket, ShadowTicket) else None

    def _ticket(self, ctx: RequestContext) -> ShadowTicket | None:
        model = ctx.requested_model or ctx.model
        picked = self.config.pick(ctx.route.value, ctx.principal.key_id, model, ctx.request_id)
        if picked is None:
            return None
        rule, candidate = picked
        return ShadowTicket(self.config, rule, candidate, ctx.body)


def build(bc: BuildContext) -> ShadowGuard:
    return ShadowGuard(load_shadow(bc.rules_dir, str(bc.options.get("file", "shadow.yaml"))))
