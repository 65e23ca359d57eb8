"""The per-request context every guard sees, and the record of what each decided."""

from __future__ import annotations

import enum
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from proxy.verdicts import Verdict


class Route(enum.StrEnum):
    CHAT = "chat.completions"
    COMPLETIONS = "completions"
    RESPONSES = "responses"
    EMBEDDINGS = "embeddings"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: resolved from the proxy key, never the key itself."""

    key_id: str
    team: str
    models: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Decision:
    """One guard's verdict, and whether it was enforced (False in monitor mode)."""

    verdict: Verdict
    enforced: bool
    elapsed_ms: float
    stage: str = "request"


@dataclass(slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(slots=True)
class RequestContext:
    request_id: str
    route: Route
    principal: Principal
    body: dict[str, Any]
    raw: bytes
    stream: bool = False
    body_changed: bool = False
    decisions: list[Decision] = field(default_factory=list)
    response_headers: dict[str, str] = field(default_factory=dict)
    # Per-request state owned by individual guards, keyed by guard name (e.g. a PII
    # pseudonym vault or the planted canary). Never logged.
    extras: dict[str, Any] = field(default_factory=dict)
    usage: Usage | None = None
    upstream_calls: int = 0
    started: float = field(default_factory=time.perf_counter)
    upstream_started: float = 0.0
    upstream_ms: float = 0.0  # waiting on the upstream: from sending to its last byte
    ttft_ms: float | None = None
    # Filled by the handler as the request ends.
    status: int = 0
    error_code: str | None = None
    output_chars: int = 0  # assistant text received from upstream (settling when no usage came)
    requested_model: str = ""  # as the client sent it (before alias pinning)
    upstream_model: str | None = None
    # Awaited once when the request ends, whatever happened (success, error, client gone);
    # e.g. the limits guard settles its reservation here. Exceptions are logged, not raised.
    finalizers: list[Callable[[RequestContext], Awaitable[None]]] = field(default_factory=list)

    @property
    def model(self) -> str:
        return str(self.body.get("model", ""))

    def replace_body(self, body: dict[str, Any]) -> None:
        self.body = body
        self.body_changed = True

    def record(self, verdict: Verdict, *, enforced: bool, elapsed_ms: float, stage: str = "request") -> None:
        self.decisions.append(Decision(verdict, enforced, elapsed_ms, stage))
