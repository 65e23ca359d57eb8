"""Sentence vectors for the output-side guards, from the shared embedder (``services.embedder()``).

The model is loaded once per process by ``proxy/embedding.py``; a guard without it falls
back to its non-semantic layer and says so.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from proxy.services import Services

log = logging.getLogger("guardrail.output")


def shared_model(services: Services | None) -> Any | None:
    """The process-wide embedding model, or None when there is none to be had."""
    if services is None:
        return None
    try:
        return services.embedder()
    except (ImportError, OSError) as exc:
        log.warning("embedder unavailable", extra={"error": str(exc)})
        return None


def encode(model: Any, texts: list[str]) -> np.ndarray:
    """Rows of unit-length float32 vectors (``Embedder.encode`` normalises them)."""
    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    return np.asarray(model.encode(texts), dtype=np.float32)
