"""Holds the current ruleset; a reload builds a new one off the event loop and swaps it in.

A failed reload keeps the last good ruleset serving and remembers why it failed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from proxy.rules.loader import RuleLoadError
from proxy.rules.ruleset import Ruleset, build_ruleset, fingerprint
from proxy.services import Services

log = logging.getLogger("guardrail.rules")


@dataclass
class ReloadStatus:
    ok: int = 0
    rejected: int = 0
    last_error: str | None = None
    last_attempt: float = 0.0


@dataclass
class RulesHolder:
    rules_dir: Path
    services: Services
    no_guards: bool = False
    current: Ruleset | None = None
    status: ReloadStatus = field(default_factory=ReloadStatus)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def load_now(self) -> Ruleset:
        """Initial, blocking load: a bad rule pack stops the process from starting."""
        self.current = build_ruleset(self.rules_dir, self.services, no_guards=self.no_guards)
        return self.current

    async def reload(self, *, force: bool = False) -> bool:
        """Rebuild if the files changed (or ``force``); True when a new ruleset was swapped in."""
        async with self._lock:
            self.status.last_attempt = time.time()
            try:
                if not force and self.current is not None:
                    version = await asyncio.to_thread(fingerprint, self.rules_dir)
                    if version == self.current.version:
                        return False
                new = await asyncio.to_thread(build_ruleset, self.rules_dir, self.services, no_guards=self.no_guards)
            except (RuleLoadError, OSError) as exc:
                self.status.rejected += 1
                self.status.last_error = str(exc)
                log.error("rules reload rejected; previous rules keep serving", extra={"error": str(exc)})
                return False
            self.current = new
            self.status.ok += 1
            self.status.last_error = None
            log.info("rules reloaded", extra={"version": new.version})
            return True
