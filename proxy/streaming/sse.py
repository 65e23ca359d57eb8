"""An incremental Server-Sent Events parser and writer (the subset OpenAI uses)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SSEEvent:
    data: str
    event: str | None = None
    raw: bytes = b""  # the exact bytes of this event, separator included

    @property
    def done(self) -> bool:
        return self.data == "[DONE]"


class SSEParser:
    """Feed bytes as they arrive; get complete events back. Handles \\n, \\r\\n and \\r."""

    def __init__(self, max_event_bytes: int = 8 * 1024 * 1024) -> None:
        self._buf = bytearray()
        self._max = max_event_bytes

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        self._buf += chunk
        if b"\r" in self._buf:
            # A trailing \r may be the first half of a \r\n split across reads: keep it raw.
            held = self._buf.endswith(b"\r")
            if held:
                del self._buf[-1:]
            self._buf[:] = self._buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
            if held:
                events = self._drain()
                self._buf += b"\r"
                return events
        return self._drain()

    def _drain(self) -> list[SSEEvent]:
        events: list[SSEEvent] = []
        while True:
            end = self._buf.find(b"\n\n")
            if end < 0:
                if len(self._buf) > self._max:
                    raise ValueError("SSE event exceeds the size limit")
                return events
            raw = bytes(self._buf[: end + 2])
            del self._buf[: end + 2]
            ev = self._parse(raw)
            if ev is not None:
                events.append(ev)

    def pending(self) -> bytes:
        """Bytes of an incomplete event (non-empty means the stream was cut mid-event)."""
        return bytes(self._buf).strip()

    @staticmethod
    def _parse(raw: bytes) -> SSEEvent | None:
        data: list[str] = []
        event: str | None = None
        for line in raw.decode("utf-8", errors="replace").split("\n"):
            if not line or line.startswith(":"):
                continue
            name, sep, value = line.partition(":")
            if sep and value.startswith(" "):
                value = value[1:]
            if name == "data":
                data.append(value)
            elif name == "event":
                event = value
        if not data and event is None:
            return None
        return SSEEvent("\n".join(data), event, raw)


def encode(data: str, event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    body = "".join(f"data: {line}\n" for line in data.split("\n"))
    return (head + body + "\n").encode()


DONE = b"data: [DONE]\n\n"
