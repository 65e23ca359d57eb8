"""``rules/policy.yaml``: proxy keys, teams and the models each key may use."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, model_validator

from proxy.rules.loader import Strict

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class KeyEntry(Strict):
    id: str = Field(min_length=1)
    team: str
    # Exactly one of: the key in clear (development only) or its sha256 hex digest.
    key: str | None = Field(default=None, min_length=8)
    sha256: str | None = None
    models: list[str] = Field(default_factory=list)
    description: str = ""

    @model_validator(mode="after")
    def _one_secret(self) -> KeyEntry:
        if (self.key is None) == (self.sha256 is None):
            raise ValueError("give exactly one of 'key' or 'sha256'")
        if self.sha256 is not None and not _HEX64.match(self.sha256):
            raise ValueError("'sha256' must be 64 lower-case hex characters")
        return self


class TeamEntry(Strict):
    description: str = ""


class ModelEntry(Strict):
    # The exact upstream model version an alias is pinned to.
    pin: str


class PolicyFile(Strict):
    schema_version: Literal[1]
    teams: dict[str, TeamEntry] = Field(default_factory=dict)
    keys: list[KeyEntry] = Field(default_factory=list)
    models: dict[str, ModelEntry] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _references(self) -> PolicyFile:
        ids: set[str] = set()
        for k in self.keys:
            if k.id in ids:
                raise ValueError(f"duplicate key id {k.id!r}")
            ids.add(k.id)
            if k.team not in self.teams:
                raise ValueError(f"key {k.id!r} names unknown team {k.team!r}")
        return self
