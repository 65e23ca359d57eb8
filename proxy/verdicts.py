"""The closed set of guard verdicts.

Every guard returns exactly one of ``Allow``, ``Flag``, ``Rewrite``, ``Block`` or
``Substitute``. Each names the guard and carries the ``Hit``s (rule ids, scores, layer,
span) that explain it, so logs, metrics, audit and response headers can say why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Action = Literal["block", "refuse", "flag", "monitor"]


@dataclass(frozen=True, slots=True)
class Hit:
    """One piece of evidence: a rule that fired, how strongly, where."""

    rule_id: str
    score: float = 1.0
    layer: str = ""
    span: tuple[int, int] | None = None
    surface: str = ""
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Allow:
    guard: str
    hits: tuple[Hit, ...] = ()


@dataclass(frozen=True, slots=True)
class Flag:
    """Annotate only: the request or response goes on, the hits are recorded."""

    guard: str
    hits: tuple[Hit, ...] = ()
    message: str = ""


@dataclass(frozen=True, slots=True)
class Rewrite:
    """A changed request body (request guards) or nothing (response guards transform text)."""

    guard: str
    body: dict[str, Any] | None = None
    hits: tuple[Hit, ...] = ()
    message: str = ""


@dataclass(frozen=True, slots=True)
class Block:
    """Refuse with an OpenAI-shaped error (HTTP ``status``)."""

    guard: str
    message: str
    hits: tuple[Hit, ...] = ()
    status: int = 400
    code: str = "content_filter"
    type: str = "invalid_request_error"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Substitute:
    """Answer now with ``text`` as the assistant message; upstream is not called.

    Used for pre-approved answers and for rules whose action is ``refuse`` (a 200 with a
    canned message and ``finish_reason: content_filter``).
    """

    guard: str
    text: str
    hits: tuple[Hit, ...] = ()
    finish_reason: str = "stop"
    headers: dict[str, str] = field(default_factory=dict)


Verdict = Allow | Flag | Rewrite | Block | Substitute

ENDING = (Block, Substitute)


def refusal(guard: str, hits: tuple[Hit, ...], message: str) -> Substitute:
    """The verdict for a rule whose action is ``refuse``."""
    return Substitute(guard=guard, text=message, hits=hits, finish_reason="content_filter")


def rule_ids(verdict: Verdict) -> list[str]:
    seen: dict[str, None] = {}
    for hit in verdict.hits:
        seen.setdefault(hit.rule_id, None)
    return list(seen)
