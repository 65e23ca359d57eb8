"""The pooled upstream connection: timeouts, bounded retries, circuit breaker, key injection."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass

import aiohttp
from multidict import CIMultiDictProxy

from proxy.errors import ProxyError, upstream_error
from proxy.upstream.breaker import CircuitBreaker

# Never forwarded from the client: hop-by-hop headers, credentials, and what we set ourselves.
DROP_REQUEST_HEADERS = frozenset(
    h.lower()
    for h in (
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
        "authorization",
        "api-key",
        "cookie",
        "openai-organization",
        "openai-project",
        "accept-encoding",
        "x-forwarded-for",
        "forwarded",
    )
)
DROP_RESPONSE_HEADERS = frozenset(
    h.lower()
    for h in (
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "content-length",
        "content-encoding",
        "set-cookie",
        "server",
        "date",
        "openai-organization",
        "openai-project",
    )
)
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class UpstreamSettings:
    url: str = "https://api.openai.com/v1"
    api_key: str | None = None
    connect_timeout_s: float = 5.0
    first_byte_timeout_s: float = 120.0
    idle_timeout_s: float = 60.0
    total_timeout_s: float = 600.0
    max_retries: int = 2
    backoff_base_s: float = 0.25
    backoff_max_s: float = 4.0
    max_retry_after_s: float = 10.0
    breaker_failures: int = 5
    breaker_reset_s: float = 10.0
    pool_size: int = 256


def _backoff(settings: UpstreamSettings, attempt: int, retry_after: str | None) -> float:
    if retry_after:
        try:
            return min(float(retry_after), settings.max_retry_after_s)
        except ValueError:
            pass
    ceiling = min(settings.backoff_max_s, settings.backoff_base_s * (2**attempt))
    return random.uniform(0, ceiling)  # full jitter


class Upstream:
    """One per upstream URL; owns one pooled ClientSession for the process lifetime."""

    def __init__(self, settings: UpstreamSettings) -> None:
        self.settings = settings
        self.base = settings.url.rstrip("/")
        self.breaker = CircuitBreaker(settings.breaker_failures, settings.breaker_reset_s)
        self.retries = 0
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        s = self.settings
        # aiohttp's client protocol sets TCP_NODELAY on every connection it opens.
        connector = aiohttp.TCPConnector(limit=s.pool_size, keepalive_timeout=30, enable_cleanup_closed=True)
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=s.total_timeout_s, sock_connect=s.connect_timeout_s),
            auto_decompress=True,
            skip_auto_headers=("User-Agent",),
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def headers_for(self, client_headers: CIMultiDictProxy[str] | None) -> dict[str, str]:
        out: dict[str, str] = {}
        if client_headers:
            for k, v in client_headers.items():
                if k.lower() not in DROP_REQUEST_HEADERS:
                    out[k] = v
        out["Content-Type"] = "application/json"
        out["Accept-Encoding"] = "identity"
        if self.settings.api_key:
            out["Authorization"] = f"Bearer {self.settings.api_key}"
        return out

    async def send(self, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> aiohttp.ClientResponse:
        """Send with bounded retries; returns a response whose headers have arrived.

        Retries only where safe: connection errors and 429/5xx answers, all before any byte
        reached the client. The caller owns (and must release) the returned response.
        """
        assert self._session is not None, "Upstream.start() was not awaited"
        s = self.settings
        url = self.base + path
        attempt = 0
        while True:
            if not self.breaker.allow():
                raise ProxyError(
                    503,
                    "The upstream model API is failing; the proxy's circuit breaker is open. Retry later.",
                    type="upstream_error",
                    code="upstream_circuit_open",
                    headers={"Retry-After": str(max(1, round(self.breaker.retry_after())))},
                )
            try:
                async with asyncio.timeout(s.first_byte_timeout_s):  # until the headers, connect included
                    resp = await self._session.request(
                        method,
                        url,
                        data=body,
                        headers=headers,
                        timeout=aiohttp.ClientTimeout(
                            total=s.total_timeout_s, sock_connect=s.connect_timeout_s, sock_read=s.idle_timeout_s
                        ),
                    )
            except TimeoutError:
                self.breaker.failure()
                raise upstream_error(
                    504, "The upstream model API did not answer in time.", "upstream_timeout"
                ) from None
            except aiohttp.ClientError as exc:
                self.breaker.failure()
                if attempt < s.max_retries:
                    await asyncio.sleep(_backoff(s, attempt, None))
                    attempt += 1
                    self.retries += 1
                    continue
                raise upstream_error(
                    502, f"The upstream model API could not be reached ({type(exc).__name__}).", "upstream_unreachable"
                ) from None
            if resp.status >= 500:
                self.breaker.failure()
            else:
                self.breaker.success()
            if resp.status in RETRY_STATUSES and attempt < s.max_retries:
                retry_after = resp.headers.get("Retry-After")
                resp.release()
                await asyncio.sleep(_backoff(s, attempt, retry_after))
                attempt += 1
                self.retries += 1
                continue
            return resp
