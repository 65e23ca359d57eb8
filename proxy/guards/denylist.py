"""A phrase deny-list (``rules/denylist.yaml``): the simplest request guard.

Case-insensitive substring match on the prompt surfaces a rule names. Kept small on
purpose: it proves the path (block, refuse, flag, monitor) that the real guards share.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import Field, model_validator

from proxy.context import RequestContext
from proxy.messages import prompt_parts
from proxy.pipeline.guard import BuildContext
from proxy.rules.loader import Strict, load_file
from proxy.verdicts import Allow, Block, Flag, Hit, Verdict, refusal

DEFAULT_SURFACES = ["user", "tool", "tool_args", "prompt", "embedding_input"]


class Examples(Strict):
    match: list[str] = Field(default_factory=list)
    no_match: list[str] = Field(default_factory=list)


class DenyRule(Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    status: Literal["experimental", "test", "stable"] = "experimental"
    severity: Literal["low", "medium", "high", "critical"] = "medium"
    action: Literal["block", "refuse", "flag", "monitor"] = "block"
    phrases: list[str] = Field(min_length=1)
    surfaces: list[str] = Field(default_factory=lambda: list(DEFAULT_SURFACES))
    message: str = "The request was blocked by the proxy's content policy."
    examples: Examples = Field(default_factory=Examples)

    @model_validator(mode="after")
    def _examples_hold(self) -> DenyRule:
        lowered = [p.lower() for p in self.phrases]
        for text in self.examples.match:
            if not any(p in text.lower() for p in lowered):
                raise ValueError(f"example {text!r} should match but does not")
        for text in self.examples.no_match:
            if any(p in text.lower() for p in lowered):
                raise ValueError(f"example {text!r} should not match but does")
        return self


class DenylistFile(Strict):
    schema_version: Literal[1]
    rules: list[DenyRule] = Field(default_factory=list)


@dataclass(frozen=True, slots=True)
class DenylistGuard:
    rules: tuple[DenyRule, ...]
    name: str = "phrase_denylist"

    def scan(self, ctx: RequestContext) -> list[tuple[DenyRule, Hit]]:
        hits: list[tuple[DenyRule, Hit]] = []
        for part in prompt_parts(ctx.route, ctx.body):
            low = part.text.lower()
            for rule in self.rules:
                if part.surface not in rule.surfaces:
                    continue
                for phrase in rule.phrases:
                    at = low.find(phrase.lower())
                    if at >= 0:
                        hits.append((rule, Hit(rule.id, 1.0, "phrase", (at, at + len(phrase)), part.surface)))
                        break
        return hits

    async def check(self, ctx: RequestContext) -> Verdict:
        hits = self.scan(ctx)
        if not hits:
            return Allow(self.name)
        all_hits = tuple(h for _, h in hits)
        for action in ("block", "refuse"):
            fired = [r for r, _ in hits if r.action == action]
            if fired and action == "block":
                return Block(self.name, fired[0].message, all_hits)
            if fired:
                return refusal(self.name, all_hits, fired[0].message)
        return Flag(self.name, all_hits, "monitor" if all(r.action == "monitor" for r, _ in hits) else "flag")


def build(bc: BuildContext) -> DenylistGuard:
    path = bc.rules_dir / str(bc.options.get("file", "denylist.yaml"))
    return DenylistGuard(tuple(load_file(DenylistFile, path).rules))
