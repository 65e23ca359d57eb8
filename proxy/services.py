"""Long-lived resources shared by guards across rule reloads (models, executors, state)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Services:
    """Created once per process; a reloaded ruleset reuses them.

    ``cpu`` is the bounded executor CPU-heavy guards run in, so the event loop never
    blocks. ``state`` is the state store (in-memory or Redis) once configured.
    """

    cpu: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(2, thread_name_prefix="guard"))
    state: Any = None
    _embedder: Any = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def embedder(self) -> Any:
        """The sentence embedding model, loaded on first use and then shared."""
        with self._lock:
            if self._embedder is None:
                from proxy.embedding import load_default

                self._embedder = load_default()
            return self._embedder

    def close(self) -> None:
        self.cpu.shutdown(wait=False, cancel_futures=True)
