"""Prompt token estimates with tiktoken, offline, and the output cap of a request.

The BPE files come from the ``bpe-openai`` package (the official cl100k/o200k files,
gzipped). They are checked against tiktoken's own sha256 digests, then placed in the
tiktoken cache (``TIKTOKEN_CACHE_DIR``, or a private directory when it is unset) under
the name tiktoken looks for, so ``tiktoken`` never reaches the network.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
import os
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

import tiktoken

from proxy.context import Route
from proxy.messages import prompt_parts

# tiktoken_ext.openai_public: the URL tiktoken caches each file under, and its sha256.
_FILES = {
    "cl100k_base": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    "o200k_base": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
}
_URL = "https://openaipublic.blob.core.windows.net/encodings/{name}.tiktoken"
DEFAULT_ENCODING = "o200k_base"

PER_MESSAGE = 3  # OpenAI's chat format overhead per message, and once for the reply
PER_IMAGE = 765  # a high-detail 512px-tiled image; an upper-side estimate
_IMAGE_TYPES = {"image_url", "input_image"}
_DOCUMENT_TYPES = {"file", "input_file", "document"}
_TOOL_RESULT_ITEMS = {"function_call_output", "custom_tool_call_output", "computer_call_output"}


class EncodingUnavailable(RuntimeError):
    pass


def _cache_dir() -> Path:
    env = os.environ.get("TIKTOKEN_CACHE_DIR")
    if env:
        return Path(env)
    path = Path(tempfile.gettempdir()) / f"guardrail-tiktoken-{os.getuid()}"
    os.environ["TIKTOKEN_CACHE_DIR"] = str(path)
    return path


def install_encoding_file(name: str) -> Path:
    """Put the verified BPE file where tiktoken's cache looks for it; returns its path."""
    expected = _FILES.get(name)
    if expected is None:
        raise EncodingUnavailable(f"no offline BPE file for encoding {name!r}")
    target = _cache_dir() / hashlib.sha1(_URL.format(name=name).encode()).hexdigest()
    if target.exists() and hashlib.sha256(target.read_bytes()).hexdigest() == expected:
        return target
    packed = resources.files("bpe_openai").joinpath("data", f"{name}.tiktoken.gz").read_bytes()
    data = gzip.decompress(packed)
    if hashlib.sha256(data).hexdigest() != expected:
        raise EncodingUnavailable(f"BPE file for {name!r} from bpe-openai does not match tiktoken's sha256")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_bytes(data)
    tmp.replace(target)
    return target


_LOADED: set[str] = set()


@functools.cache
def encoding(name: str) -> tiktoken.Encoding:
    install_encoding_file(name)
    enc = tiktoken.get_encoding(name)
    _LOADED.add(name)
    return enc


def loaded_names() -> frozenset[str]:
    return frozenset(_LOADED)


def encoding_name(model: str) -> str:
    try:
        name = tiktoken.encoding_name_for_model(model)
    except KeyError:
        return DEFAULT_ENCODING
    return name if name in _FILES else DEFAULT_ENCODING


def for_model(model: str) -> tiktoken.Encoding:
    return encoding(encoding_name(model))


def _count(enc: tiktoken.Encoding, text: str) -> int:
    return len(enc.encode_ordinary(text)) if text else 0


def _content_items(body: dict[str, Any], route: Route) -> list[Any]:
    if route is Route.CHAT:
        msgs = body.get("messages")
        return msgs if isinstance(msgs, list) else []
    if route is Route.RESPONSES:
        inp = body.get("input")
        return inp if isinstance(inp, list) else ([inp] if isinstance(inp, str) else [])
    return []


def _parts_of(item: Any) -> list[dict[str, Any]]:
    content = item.get("content") if isinstance(item, dict) else None
    return [p for p in content if isinstance(p, dict)] if isinstance(content, list) else []


def prompt_tokens(route: Route, body: dict[str, Any], enc: tiktoken.Encoding) -> int:
    """An estimate of what the upstream will count as prompt/input tokens."""
    if route is Route.EMBEDDINGS:
        inp = body.get("input")
        items = inp if isinstance(inp, list) else [inp]
        if items and all(isinstance(x, int) for x in items):
            return len(items)  # one pre-tokenized input
        return sum(_count(enc, x) if isinstance(x, str) else len(x) if isinstance(x, list) else 0 for x in items)
    n = sum(_count(enc, p.text) for p in prompt_parts(route, body))
    items = _content_items(body, route)
    n += PER_MESSAGE * len(items) + (PER_MESSAGE if route in (Route.CHAT, Route.RESPONSES) else 0)
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("name"), str):
            n += 1 + _count(enc, item["name"])
        n += PER_IMAGE * sum(1 for p in _parts_of(item) if p.get("type") in _IMAGE_TYPES)
    for extra in ("tools", "functions", "response_format", "text"):
        value = body.get(extra)
        if isinstance(value, list | dict) and value:
            n += _count(enc, json.dumps(value, ensure_ascii=False, separators=(",", ":")))
    return n


def prompt_chars(route: Route, body: dict[str, Any]) -> int:
    return sum(len(p.text) for p in prompt_parts(route, body))


def message_count(route: Route, body: dict[str, Any]) -> int:
    if route is Route.CHAT or route is Route.RESPONSES:
        return len(_content_items(body, route))
    value = body.get("prompt" if route is Route.COMPLETIONS else "input")
    return len(value) if isinstance(value, list) else 1


def document_count(route: Route, body: dict[str, Any]) -> int:
    """Tool/function results and file parts in the request (retrieved documents)."""
    count = 0
    for item in _content_items(body, route):
        if not isinstance(item, dict):
            continue
        if item.get("role") in ("tool", "function") or item.get("type") in _TOOL_RESULT_ITEMS:
            count += 1
        count += sum(1 for p in _parts_of(item) if p.get("type") in _DOCUMENT_TYPES)
    return count


# Output cap: the body fields that bound output tokens, by route (first = the one to add).
CAP_FIELDS: dict[Route, tuple[str, ...]] = {
    Route.CHAT: ("max_completion_tokens", "max_tokens"),
    Route.COMPLETIONS: ("max_tokens",),
    Route.RESPONSES: ("max_output_tokens",),
    Route.EMBEDDINGS: (),
}


def requested_cap(route: Route, body: dict[str, Any]) -> int | None:
    """The smallest output bound the request gives, or None."""
    found = [body[f] for f in CAP_FIELDS[route] if isinstance(body.get(f), int) and not isinstance(body[f], bool)]
    return min(found) if found else None


def choices(route: Route, body: dict[str, Any]) -> int:
    if route not in (Route.CHAT, Route.COMPLETIONS):
        return 1
    n = body.get("n")
    best = body.get("best_of") if route is Route.COMPLETIONS else None
    values = [v for v in (n, best) if isinstance(v, int) and not isinstance(v, bool) and v > 0]
    return max(values) if values else 1


def clamped(route: Route, body: dict[str, Any], clamp: int | None, inject: bool) -> dict[str, Any] | None:
    """A body with its output bound clamped (or added), or None when nothing changes."""
    if clamp is None or not CAP_FIELDS[route]:
        return None
    changes = {
        f: clamp
        for f in CAP_FIELDS[route]
        if isinstance(body.get(f), int) and not isinstance(body[f], bool) and body[f] > clamp
    }
    if inject and requested_cap(route, body) is None:
        changes[CAP_FIELDS[route][0]] = clamp
    return {**body, **changes} if changes else None


def output_cap(route: Route, body: dict[str, Any], clamp: int | None, inject: bool, default: int) -> int:
    """Output tokens to reserve: the request's bound after clamping, times the choices."""
    if route is Route.EMBEDDINGS:
        return 0
    cap = requested_cap(route, body)
    if cap is None:
        cap = clamp if (inject and clamp is not None) else default
    elif clamp is not None:
        cap = min(cap, clamp)
    return max(0, cap) * choices(route, body)
