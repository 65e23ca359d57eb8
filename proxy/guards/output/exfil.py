"""Exfiltration links: images and links to hosts not on the allow-list, above all with data.

A markdown image (``![x](https://host/p?d=...)``) or an HTML ``<img src=...>`` in an
answer is fetched by the client's renderer without a click: whatever sits in its URL
leaves. Each URL is judged once, when it is complete (a terminator arrived), however the
chunks split it; until then ``release_point`` holds it back, so no piece of a URL under
judgement reaches the client. Cost per chunk: a substring test unless a URL is in play.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from proxy.context import RequestContext
from proxy.guards.output.config import ExfilConfig
from proxy.guards.output.signals import BaseSignal
from proxy.verdicts import Hit

URL = re.compile(r"https?://[^\s<>\"'`)\]|]+", re.IGNORECASE)
LAST_TERMINATOR = re.compile(r"(?s).*[\s<>\"'`)\]|]")
IMAGE_BEFORE = re.compile(r"(?:!\[[^\]\n]{0,300}\]\(\s*<?|<img\b[^>]{0,300}?\bsrc\s*=\s*[\"']?)$", re.IGNORECASE)
LINK_BEFORE = re.compile(r"(?:\][ \t]?\(\s*<?|<a\b[^>]{0,300}?\bhref\s*=\s*[\"']?|\]:\s*<?)$", re.IGNORECASE)
DATA_PATH = re.compile(r"[A-Za-z0-9+/_=-]{32,}")
CONTEXT = 320  # characters kept before a URL to see whether it is an image or a link
SCHEMES = ("https://", "http://")


def host_allowed(host: str, allow: tuple[str, ...]) -> bool:
    host = host.lower().rstrip(".")
    return any(host == a or host.endswith("." + a) for a in allow)


def classify(url: str, before: str, cfg: ExfilConfig, allow: tuple[str, ...]) -> tuple[str, float, str] | None:
    """(kind, score, host) for a URL to a foreign host, or None when it is fine."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        return "url", cfg.overlong, "?"
    if host and host_allowed(host, allow):
        return None
    data = bool(parts.query) or bool(DATA_PATH.search(parts.path))
    if IMAGE_BEFORE.search(before):
        return "image", cfg.image_with_data if data else cfg.image, host
    if LINK_BEFORE.search(before):
        return "link", cfg.link_with_data if data else cfg.link, host
    return ("url", cfg.bare_url_with_data, host) if data else None


class ExfilSignal(BaseSignal):
    def __init__(self, cfg: ExfilConfig, allow: tuple[str, ...]) -> None:
        self.cfg = cfg
        self.allow = allow
        self._buf = ""  # context + any URL not yet complete
        self._base = 0  # absolute offset of _buf[0]
        self._done = 0  # absolute offset up to which URLs have been judged
        self._open = -1  # absolute offset of a URL not yet complete

    def feed(self, text: str) -> list[Hit]:
        buf = self._buf + text
        base = self._base
        if self._open >= 0:
            start = self._open - base
        else:
            start = max(self._done - base, len(self._buf) - 8, 0)
        hits: list[Hit] = []
        open_at = -1
        if "http" in buf[start:].lower():
            for m in URL.finditer(buf, start):
                if m.end() == len(buf):  # may go on in the next chunk
                    if m.end() - m.start() > self.cfg.max_url_chars:
                        hits.append(self._hit("overlong", self.cfg.overlong, "?", base + m.start(), base + m.end()))
                        self._done = base + m.end()
                    else:
                        open_at = m.start()
                    break
                found = classify(m.group(), buf[max(0, m.start() - CONTEXT) : m.start()], self.cfg, self.allow)
                self._done = base + m.end()
                if found is not None and found[1] > 0:
                    kind, score, host = found
                    hits.append(self._hit(kind, score, host, base + m.start(), base + m.end()))
        self._open = base + open_at if open_at >= 0 else -1
        keep_from = len(buf) - CONTEXT if open_at < 0 else open_at - CONTEXT
        keep_from = max(0, keep_from)
        self._buf = buf[keep_from:]
        self._base = base + keep_from
        return hits

    def _hit(self, kind: str, score: float, host: str, start: int, end: int) -> Hit:
        return Hit(f"output.exfil.{kind}", score, "exfil", (start, end), "output", f"host={host}")

    async def finish(self, text: str) -> list[Hit]:
        # The end of the answer terminates a URL still open: judge it now.
        if not self._buf:
            return []
        tail = self._buf
        self._buf = ""
        hits = self.feed_end(tail)
        return hits

    def feed_end(self, tail: str) -> list[Hit]:
        start = max(self._done - self._base, 0)
        out: list[Hit] = []
        for m in URL.finditer(tail, start):
            found = classify(m.group(), tail[max(0, m.start() - CONTEXT) : m.start()], self.cfg, self.allow)
            if found is not None and found[1] > 0:
                kind, score, host = found
                out.append(self._hit(kind, score, host, self._base + m.start(), self._base + m.end()))
        return out

    def release_point(self, pending: str) -> int:
        """Hold back a URL (or the start of ``https://``) that is still open at the end."""
        look = pending[-self.cfg.max_url_chars :]
        low = look.lower()
        m = LAST_TERMINATOR.match(low)
        at = low.find("http", m.end() if m else 0)
        while at >= 0 and not low.startswith(SCHEMES, at):
            at = low.find("http", at + 1)
        if at >= 0:
            return len(pending) - (len(look) - at)
        for k in range(min(len(low), 7), 0, -1):
            if low.endswith(SCHEMES[0][:k]) or low.endswith(SCHEMES[1][:k]):
                return len(pending) - k
        return len(pending)


@dataclass(frozen=True, slots=True)
class ExfilSignals:
    cfg: ExfilConfig
    name: str = "exfil"

    @property
    def allow(self) -> tuple[str, ...]:
        return tuple(h.lower().lstrip(".") for h in self.cfg.allow_hosts)

    def open(self, ctx: RequestContext) -> ExfilSignal | None:
        return ExfilSignal(self.cfg, self.allow) if self.cfg.enabled else None

    def scan(self, text: str) -> list[Hit]:
        """Whole-text check (rule examples, tests)."""
        sig = ExfilSignal(self.cfg, self.allow)
        return sig.feed(text) + sig.feed_end(sig._buf)
