"""Response guard ``pii_restore``: placeholders back to values, and PII the request did not contain.

* ``transform`` restores ``<PERSON_1>`` from the request's vault before text reaches the
  client; ``release_point`` never lets half a placeholder leave, so one split across
  stream chunks is held until it is whole.
* ``finish`` looks for personal data in the whole answer that the request did not contain
  (``output:`` in pii.yaml). Non-stream answers are held until then, so ``redact``
  replaces the values before the client sees them; in a stream most of the text has
  left already, so ``redact`` can only clean what is still held back and is recorded as
  a flag, while ``block`` ends the stream (``finish_reason: content_filter``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from proxy.context import RequestContext
from proxy.guards.pii.guard import STATE_KEY, PiiRuntime, PiiState, runtime
from proxy.guards.pii.vault import PLACEHOLDER, Vault, hold_point
from proxy.pipeline.guard import BuildContext, OutputScanner
from proxy.verdicts import Allow, Block, Flag, Hit, Rewrite, Verdict

NAME = "pii_restore"


@dataclass
class RestoreScanner:
    rt: PiiRuntime
    state: PiiState
    stream: bool
    guard: str = NAME
    _redact: dict[str, str] = field(default_factory=dict)

    def feed(self, text: str) -> Verdict:
        return Allow(self.guard)

    def entities(self) -> list[str]:
        return self.rt.cfg.output_entities() if self.rt.cfg.surfaces.responses else []

    def release_point(self, pending: str) -> int:
        if not self.stream and self.rt.cfg.output.action == "redact" and self.entities():
            return 0  # a whole answer is released at finish, after the output check
        return hold_point(pending)

    def transform(self, text: str) -> str:
        for value, repl in self._redact.items():
            text = text.replace(value, repl)
        return self.state.vault.restore(text)

    async def finish(self, text: str) -> Verdict:
        entities = self.entities()
        if not entities or not text.strip():
            return Allow(self.guard)
        masked = PLACEHOLDER.sub(lambda m: " " * len(m.group(0)), text)
        (found,) = await self.rt.analyze([masked], entities)
        new = [f for f in found if text[f.start : f.end].strip().casefold() not in self.state.seen]
        if not new:
            return Allow(self.guard)
        hits = tuple(Hit(f"pii.output.{f.entity}", f.score, "pattern", (f.start, f.end), "output", "new") for f in new)
        action = self.rt.cfg.output.action
        if action == "block":
            return Block(self.guard, "The answer contained personal data and was withheld.", hits)
        if action == "redact":
            for f in new:
                self._redact[text[f.start : f.end]] = self.rt.ops.redact(f.entity, "")
            if not self.stream:
                return Rewrite(self.guard, None, hits, "output PII redacted")
            return Flag(self.guard, hits, "output PII in a stream: only the held-back tail was redacted")
        return Flag(self.guard, hits, "output PII")


@dataclass
class RestoreGuard:
    rt: PiiRuntime
    name: str = NAME

    def open(self, ctx: RequestContext) -> OutputScanner | None:
        """Placeholders are always restored; ``surfaces.responses: false`` only turns off the
        search for new PII in answers."""
        st = ctx.extras.get(STATE_KEY)
        state = st if isinstance(st, PiiState) else PiiState(Vault())
        if not len(state.vault) and not (self.rt.cfg.surfaces.responses and self.rt.cfg.output_entities()):
            return None
        return RestoreScanner(self.rt, state, ctx.stream)


def build(bc: BuildContext) -> RestoreGuard:
    return RestoreGuard(runtime(bc, response=True))
