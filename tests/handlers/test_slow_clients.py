"""A client that stalls while sending its body is cut off with 408, not left hanging."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import urlsplit

from proxy.devtools.fake_upstream import FakeUpstream
from tests.conftest import DEV_KEY, MakeProxy


async def test_stalled_body_gets_408(make_proxy: MakeProxy, upstream: FakeUpstream) -> None:
    proxy = await make_proxy(client_timeout_s=0.3)
    url = urlsplit(proxy.root)
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    head = (
        "POST /v1/chat/completions HTTP/1.1\r\n"
        f"Host: {url.netloc}\r\nAuthorization: Bearer {DEV_KEY}\r\n"
        "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
    )
    writer.write(head.encode() + b'{"model": "gpt-4o-mini",')
    await writer.drain()
    raw = await asyncio.wait_for(reader.read(65536), timeout=5)
    writer.close()
    status_line, _, rest = raw.partition(b"\r\n")
    assert b" 408 " in status_line
    body = json.loads(rest.split(b"\r\n\r\n", 1)[1])
    assert body["error"]["code"] == "request_timeout"
    assert upstream.requests == []
