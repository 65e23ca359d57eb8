"""What happens to a found value: redact, mask, hash or a reversible pseudonym.

Operators are validated with the rule file (``Mask``, ``hash_salt``) and applied here;
``block`` and ``allow`` are decisions, not text operators, and are handled by the guard.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from proxy.guards.pii.config import Mask
from proxy.guards.pii.vault import Vault


@dataclass(frozen=True, slots=True)
class Operators:
    mask_spec: Mask
    salt: str = ""

    def redact(self, entity: str, value: str) -> str:
        return f"<{entity}>"

    def mask(self, entity: str, value: str) -> str:
        keep = min(self.mask_spec.keep_last, len(value) // 2)
        head, tail = value[: len(value) - keep], value[len(value) - keep :]
        return "".join(c if c in " -.@" else self.mask_spec.char for c in head) + tail

    def hash(self, entity: str, value: str) -> str:
        digest = hashlib.sha256(f"{self.salt}\x00{entity}\x00{value.strip().casefold()}".encode()).hexdigest()
        return f"<{entity}#{digest[:12]}>"

    def apply(self, action: str, entity: str, value: str, vault: Vault) -> str:
        if action == "pseudonym":
            return vault.placeholder(entity, value)
        if action == "mask":
            return self.mask(entity, value)
        if action == "hash":
            return self.hash(entity, value)
        if action == "redact":
            return self.redact(entity, value)
        raise ValueError(f"{action!r} is not a text operator")


def replace_spans(text: str, spans: list[tuple[int, int, str]]) -> str:
    """``text`` with each non-overlapping ``(start, end, replacement)`` applied."""
    out: list[str] = []
    at = 0
    for start, end, repl in sorted(spans):
        if start < at:
            continue
        out.append(text[at:start])
        out.append(repl)
        at = end
    out.append(text[at:])
    return "".join(out)
