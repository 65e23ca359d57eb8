"""Reversible pseudonyms: the same value gets the same ``<ENTITY_n>`` placeholder.

A ``Vault`` lives in the request context (``ctx.extras["pii"]``) or, with
``mapping_scope: conversation``, in ``ConversationVaults`` keyed by a hash of the caller
and the conversation's first turn. The values are never logged: ``__repr__`` shows counts only.
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

PLACEHOLDER = re.compile(r"<([A-Z][A-Z0-9_]*?)_(\d+)>")
# A possibly unfinished placeholder at the end of a text ("<PERS", "<PERSON_1").
PARTIAL_TAIL = re.compile(r"<[A-Z0-9_]{0,40}$")


@dataclass
class Vault:
    _by_value: dict[tuple[str, str], str] = field(default_factory=dict)
    _by_tag: dict[str, str] = field(default_factory=dict)
    _counts: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def placeholder(self, entity: str, value: str) -> str:
        key = (entity, value.strip().casefold())
        with self._lock:
            tag = self._by_value.get(key)
            if tag is None:
                n = self._counts.get(entity, 0) + 1
                self._counts[entity] = n
                tag = f"<{entity}_{n}>"
                self._by_value[key] = tag
                self._by_tag[tag] = value
            return tag

    def value(self, tag: str) -> str | None:
        return self._by_tag.get(tag)

    def restore(self, text: str) -> str:
        if "<" not in text or not self._by_tag:
            return text
        return PLACEHOLDER.sub(lambda m: self._by_tag.get(m.group(0), m.group(0)), text)

    def values(self) -> set[str]:
        return {v.casefold() for v in self._by_tag.values()}

    def __len__(self) -> int:
        return len(self._by_tag)

    def __repr__(self) -> str:
        return f"Vault({len(self._by_tag)} placeholders)"


def hold_point(pending: str) -> int:
    """How much of ``pending`` may leave without cutting a placeholder in two."""
    m = PARTIAL_TAIL.search(pending)
    return m.start() if m else len(pending)


class ConversationVaults:
    """Vaults that outlive a request: bounded (LRU) and expiring after ``ttl_s`` of disuse."""

    def __init__(self, ttl_s: float, max_items: int = 10_000) -> None:
        self.ttl_s = ttl_s
        self.max_items = max_items
        self._items: OrderedDict[str, tuple[float, Vault]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> Vault:
        now = time.monotonic()
        with self._lock:
            found = self._items.pop(key, None)
            vault = found[1] if found and now - found[0] < self.ttl_s else Vault()
            self._items[key] = (now, vault)
            while len(self._items) > self.max_items:
                self._items.popitem(last=False)
            return vault

    def __repr__(self) -> str:
        return f"ConversationVaults({len(self._items)})"
