"""OpenAI-shaped errors: every failure a client sees goes through here."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web


class ProxyError(Exception):
    """An error that becomes an OpenAI-shaped HTTP response."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.headers = headers or {}
        self.extra = extra or {}

    def payload(self) -> dict[str, Any]:
        err: dict[str, Any] = {
            "message": self.message,
            "type": self.type,
            "param": self.param,
            "code": self.code,
        }
        err.update(self.extra)
        return {"error": err}

    def response(self, request_id: str | None = None) -> web.Response:
        headers = dict(self.headers)
        if request_id:
            headers["x-request-id"] = request_id
        return web.Response(
            status=self.status,
            body=json.dumps(self.payload()).encode(),
            content_type="application/json",
            headers=headers,
        )


def bad_request(message: str, *, code: str = "invalid_request", param: str | None = None) -> ProxyError:
    return ProxyError(400, message, code=code, param=param)


def unauthorized(message: str = "Invalid or missing proxy API key.") -> ProxyError:
    return ProxyError(401, message, type="invalid_request_error", code="invalid_api_key")


def not_found(message: str, *, code: str = "not_found") -> ProxyError:
    return ProxyError(404, message, code=code)


def upstream_error(status: int, message: str, code: str) -> ProxyError:
    return ProxyError(status, message, type="upstream_error", code=code)
