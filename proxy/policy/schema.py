"""``rules/policy.yaml``: proxy keys, teams, the models each key may use, and their limits.

Budgets, rate limits and conversation limits can be set per key and per team; a request
must fit both its key's and its team's. Conversation limits also have a global default
(``limits.conversation``); a key's value wins over its team's, which wins over the default.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, model_validator

from proxy.rules.loader import Strict

_HEX64 = re.compile(r"^[0-9a-f]{64}$")

FailMode = Literal["open", "closed"]


class Budget(Strict):
    """Spend allowed per UTC day and per UTC month, in tokens and in USD (rules/pricing.yaml)."""

    tokens_per_day: int | None = Field(default=None, ge=0)
    tokens_per_month: int | None = Field(default=None, ge=0)
    usd_per_day: float | None = Field(default=None, ge=0)
    usd_per_month: float | None = Field(default=None, ge=0)


class RateLimits(Strict):
    rpm: int | None = Field(default=None, gt=0)  # requests per minute
    tpm: int | None = Field(default=None, gt=0)  # tokens per minute (prompt estimate + output cap)
    concurrent: int | None = Field(default=None, gt=0)  # requests in flight


class ConversationLimits(Strict):
    max_messages: int | None = Field(default=None, gt=0)  # messages / input items per request
    max_prompt_tokens: int | None = Field(default=None, gt=0)  # estimated with tiktoken
    max_documents: int | None = Field(default=None, ge=0)  # tool results and file parts per request
    max_tokens: int | None = Field(default=None, gt=0)  # clamp on max_tokens / max_completion_tokens


class LimitsSettings(Strict):
    # Redis unreachable: "open" admits without limits, "closed" refuses (503). Per key: fail_mode.
    fail_mode: FailMode = "open"
    # A concurrency slot not released by then (crashed replica) is freed.
    lease_s: int = Field(default=600, gt=0, le=86_400)
    # Output tokens reserved when the request gives no max_tokens and none is injected.
    default_output_tokens: int = Field(default=1024, ge=0)
    # When the request gives no max_tokens, add the conversation clamp to it, so the
    # reservation is a true upper bound (a budget can then never be overrun).
    inject_max_tokens: bool = False
    conversation: ConversationLimits = Field(default_factory=ConversationLimits)


class KeyEntry(Strict):
    id: str = Field(min_length=1)
    team: str
    # Exactly one of: the key in clear (development only) or its sha256 hex digest.
    key: str | None = Field(default=None, min_length=8)
    sha256: str | None = None
    models: list[str] = Field(default_factory=list)
    description: str = ""
    budget: Budget = Field(default_factory=Budget)
    rate_limits: RateLimits = Field(default_factory=RateLimits)
    conversation: ConversationLimits = Field(default_factory=ConversationLimits)
    fail_mode: FailMode | None = None  # overrides limits.fail_mode for this key

    @model_validator(mode="after")
    def _one_secret(self) -> KeyEntry:
        if (self.key is None) == (self.sha256 is None):
            raise ValueError("give exactly one of 'key' or 'sha256'")
        if self.sha256 is not None and not _HEX64.match(self.sha256):
            raise ValueError("'sha256' must be 64 lower-case hex characters")
        return self


class TeamEntry(Strict):
    description: str = ""
    budget: Budget = Field(default_factory=Budget)
    rate_limits: RateLimits = Field(default_factory=RateLimits)
    conversation: ConversationLimits = Field(default_factory=ConversationLimits)


class ModelEntry(Strict):
    # The exact upstream model version an alias is pinned to.
    pin: str


class PolicyFile(Strict):
    schema_version: Literal[1]
    teams: dict[str, TeamEntry] = Field(default_factory=dict)
    keys: list[KeyEntry] = Field(default_factory=list)
    models: dict[str, ModelEntry] = Field(default_factory=dict)
    limits: LimitsSettings = Field(default_factory=LimitsSettings)

    @model_validator(mode="after")
    def _references(self) -> PolicyFile:
        ids: set[str] = set()
        for k in self.keys:
            if k.id in ids:
                raise ValueError(f"duplicate key id {k.id!r}")
            ids.add(k.id)
            if k.team not in self.teams:
                raise ValueError(f"key {k.id!r} names unknown team {k.team!r}")
            unpinned = [m for m in k.models if m not in self.models]
            if unpinned:
                raise ValueError(f"key {k.id!r} allows model(s) {unpinned} not declared (pinned) under 'models'")
        return self
