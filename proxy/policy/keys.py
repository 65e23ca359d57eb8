"""Proxy key → principal. Keys are compared by sha256 digest; the clear key is never kept."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from proxy.context import Principal
from proxy.policy.schema import PolicyFile
from proxy.rules.loader import load_file


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Keyring:
    by_digest: dict[str, Principal]
    aliases: dict[str, str]  # requested model → pinned upstream model

    def principal(self, bearer: str | None) -> Principal | None:
        if not bearer:
            return None
        return self.by_digest.get(digest(bearer))

    def pin(self, model: str) -> str:
        return self.aliases.get(model, model)

    @classmethod
    def compile(cls, policy: PolicyFile) -> Keyring:
        by_digest = {
            (k.sha256 or digest(k.key or "")): Principal(key_id=k.id, team=k.team, models=tuple(k.models))
            for k in policy.keys
        }
        return cls(by_digest=by_digest, aliases={name: m.pin for name, m in policy.models.items()})


def load_policy(rules_dir: Path) -> PolicyFile:
    return load_file(PolicyFile, rules_dir / "policy.yaml")
