"""Hot reload: poll the rules directory, reload on change or on SIGHUP.

The watcher compares a digest of the directory's contents (following symlinks, so a
Kubernetes ConfigMap update, which swaps the ``..data`` symlink to a new timestamped
directory, shows up as a change). A change is handed to ``RulesHolder.reload``, which
validates and compiles the new files off the event loop and swaps the ruleset in
atomically; a bad change is rejected there and the last good ruleset keeps serving.

``install(app)`` runs the watcher for the app's lifetime (a task owned by a
``cleanup_ctx``) and adds a ``rules_reload`` entry to ``/readyz``. The poll interval is
``GUARDRAIL_RELOAD_INTERVAL_S`` (default 2 s; 0 turns polling off, SIGHUP still works).
``handle_sighup(app)`` (called by ``serve``) makes SIGHUP force a reload.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import signal
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from proxy.handlers.misc import READY_CHECKS
from proxy.rules.holder import RulesHolder
from proxy.runtime import RUNTIME

log = logging.getLogger("guardrail.rules")

INTERVAL_ENV = "GUARDRAIL_RELOAD_INTERVAL_S"
DEFAULT_INTERVAL_S = 2.0


def tree_fingerprint(rules_dir: Path) -> str:
    """A digest of every file under ``rules_dir``, following symlinks, skipping dot entries.

    Dot entries are skipped (``..data``, ``..2026_11_25_…`` in a ConfigMap mount, editor
    swap files); the visible names there are symlinks into ``..data`` and are followed,
    as are symlinked sub-directories (``injection -> ..data/injection``).
    """
    h = hashlib.sha256()
    seen: set[str] = set()
    for root, dirs, files in os.walk(rules_dir, followlinks=True):
        real = os.path.realpath(root)
        if real in seen:  # a symlink loop
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        rel_root = os.path.relpath(root, rules_dir)
        for name in sorted(f for f in files if not f.startswith(".")):
            path = os.path.join(root, name)
            try:
                with open(path, "rb") as fh:
                    data = fh.read()
            except OSError:  # vanished mid-swap or a dangling link: part of the digest
                data = b"\0missing"
            h.update(os.path.normpath(os.path.join(rel_root, name)).encode())
            h.update(b"\0")
            h.update(hashlib.sha256(data).digest())
    return h.hexdigest()[:16]


def interval_from_env(default: float = DEFAULT_INTERVAL_S) -> float:
    raw = os.environ.get(INTERVAL_ENV, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0:  # also catches nan
        log.error("ignoring invalid reload interval", extra={"env": INTERVAL_ENV, "value": raw, "used": default})
        return default
    return value


@dataclass
class RulesWatcher:
    holder: RulesHolder
    interval_s: float = DEFAULT_INTERVAL_S
    last_seen: str | None = None  # tree digest of the last content looked at (good or bad)
    last_check: float = 0.0
    last_change: float = 0.0  # when a new ruleset was last swapped in
    forced: int = 0  # SIGHUP (or trigger()) count
    _wake: asyncio.Event = field(default_factory=asyncio.Event)

    def trigger(self) -> None:
        """Force a reload at the next turn of the loop (the SIGHUP handler)."""
        self.forced += 1
        self._wake.set()

    async def start(self) -> None:
        """Remember the current contents; catch a change made while the first load ran."""
        self.last_seen = await asyncio.to_thread(tree_fingerprint, self.holder.rules_dir)
        if await self.holder.reload(force=False):
            self.last_change = time.time()

    async def poll_once(self, *, force: bool = False) -> bool:
        """Reload when the contents changed (or ``force``); True when a new ruleset went in."""
        before = await asyncio.to_thread(tree_fingerprint, self.holder.rules_dir)
        self.last_check = time.time()
        if not force and before == self.last_seen:
            return False
        log.info("rules change detected" if not force else "rules reload forced", extra={"digest": before})
        try:
            swapped = await self.holder.reload(force=True)
        except Exception as exc:  # a guard factory failing unexpectedly: rejected like a bad file
            status = self.holder.status
            status.rejected += 1
            status.last_error = f"{type(exc).__name__}: {exc}"
            log.error("rules reload failed; previous rules keep serving", extra={"error": status.last_error})
            self.last_seen = before
            return False
        after = await asyncio.to_thread(tree_fingerprint, self.holder.rules_dir)
        # Files that changed while loading (a half-written edit) are looked at again next turn.
        self.last_seen = before if after != before else after
        if swapped:
            self.last_change = time.time()
        return swapped

    async def run(self) -> None:
        timeout = self.interval_s if self.interval_s > 0 else None
        while True:
            forced = False
            try:
                async with asyncio.timeout(timeout):  # no extra task, unlike wait_for on 3.11
                    await self._wake.wait()
                forced = True
            except TimeoutError:
                pass
            self._wake.clear()
            try:
                await self.poll_once(force=forced)
            except Exception:  # never let the watcher die; the error is in the log
                log.exception("rules watcher failed; will retry")

    async def ready_check(self) -> dict[str, Any]:
        status = self.holder.status
        current = self.holder.current
        return {
            "ok": True,  # a rejected change leaves the last good rules serving: still ready
            "state": "serving_last_good" if status.last_error else "current",
            "version": current.version if current is not None else None,
            "interval_s": self.interval_s,
            "reloads_ok": status.ok,
            "reloads_rejected": status.rejected,
            "reloads_forced": self.forced,
            "last_error": status.last_error,
            "last_check": self.last_check or None,
            "last_change": self.last_change or None,
        }


RULES_WATCHER = web.AppKey("rules_watcher", RulesWatcher)


def install(app: web.Application, interval_s: float | None = None) -> None:
    """Run the rules watcher for the app's lifetime (idempotent)."""
    if RULES_WATCHER in app:
        return
    rt = app[RUNTIME]
    watcher = RulesWatcher(rt.rules, interval_from_env() if interval_s is None else interval_s)
    app[RULES_WATCHER] = watcher
    app.setdefault(READY_CHECKS, {})["rules_reload"] = watcher.ready_check

    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        await watcher.start()
        task = asyncio.create_task(watcher.run(), name="rules-watcher")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    app.cleanup_ctx.append(lifetime)


def handle_sighup(app: web.Application) -> None:
    """Make SIGHUP force a rules reload (instead of killing the process). Call before start."""

    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        watcher = app.get(RULES_WATCHER)
        try:
            loop.add_signal_handler(signal.SIGHUP, _on_sighup, watcher)
        except (RuntimeError, ValueError, NotImplementedError) as exc:  # not the main thread / no signals here
            log.warning("SIGHUP reload unavailable", extra={"error": str(exc)})
            yield
            return
        yield
        loop.remove_signal_handler(signal.SIGHUP)

    app.cleanup_ctx.append(lifetime)


def _on_sighup(watcher: RulesWatcher | None) -> None:
    log.info("SIGHUP received: reloading rules")
    if watcher is not None:
        watcher.trigger()


__all__ = ["RULES_WATCHER", "RulesWatcher", "handle_sighup", "install", "interval_from_env", "tree_fingerprint"]
