"""An OpenAPI 3 description of what the proxy serves (fuzzed by schemathesis in the tests).

Served at ``GET /openapi.json``. Request schemas describe the fields the proxy validates;
every other field is allowed and forwarded untouched.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type", "code"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "code": {"type": ["string", "null"]},
            },
        }
    },
}
_STRING_OR_LIST = {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}
_MESSAGE = {
    "type": "object",
    "required": ["role"],
    "properties": {
        "role": {"type": "string", "enum": ["system", "developer", "user", "assistant", "tool"]},
        "content": {"oneOf": [{"type": "string"}, {"type": "null"}, {"type": "array", "items": {"type": "object"}}]},
    },
}
_BODIES: dict[str, dict[str, Any]] = {
    "/v1/chat/completions": {
        "type": "object",
        "required": ["model", "messages"],
        "properties": {
            "model": {"type": "string"},
            "messages": {"type": "array", "items": _MESSAGE, "minItems": 1},
            "stream": {"type": "boolean"},
            "max_tokens": {"type": "integer", "minimum": 1},
            "temperature": {"type": "number"},
        },
    },
    "/v1/completions": {
        "type": "object",
        "required": ["model", "prompt"],
        "properties": {"model": {"type": "string"}, "prompt": _STRING_OR_LIST, "stream": {"type": "boolean"}},
    },
    "/v1/embeddings": {
        "type": "object",
        "required": ["model", "input"],
        "properties": {"model": {"type": "string"}, "input": _STRING_OR_LIST},
    },
    "/v1/responses": {
        "type": "object",
        "required": ["model"],
        "properties": {
            "model": {"type": "string"},
            "input": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "object"}}]},
            "instructions": {"type": "string"},
            "stream": {"type": "boolean"},
        },
    },
}
_ERROR_CODES = ("400", "401", "404", "408", "413", "429", "502", "503", "504")


def _responses(ok: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"200": {"description": "OK", "content": {"application/json": {"schema": ok}}}}
    for code in _ERROR_CODES:
        out[code] = {"description": "OpenAI-shaped error", "content": {"application/json": {"schema": _ERROR}}}
    return out


def spec() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for path, body in _BODIES.items():
        paths[path] = {
            "post": {
                "operationId": path.strip("/").replace("/", "_"),
                "security": [{"proxyKey": []}],
                "requestBody": {"required": True, "content": {"application/json": {"schema": body}}},
                "responses": _responses({"type": "object"}),
            }
        }
    paths["/v1/models"] = {
        "get": {"operationId": "v1_models", "security": [{"proxyKey": []}], "responses": _responses({"type": "object"})}
    }
    for probe in ("/healthz", "/readyz"):
        paths[probe] = {
            "get": {
                "operationId": probe.strip("/"),
                "responses": {"200": {"description": "OK"}, "503": {"description": "not ready"}},
            }
        }
    return {
        "openapi": "3.1.0",
        "info": {"title": "guardrail-proxy", "version": "1"},
        "paths": paths,
        "components": {"securitySchemes": {"proxyKey": {"type": "http", "scheme": "bearer"}}},
    }


async def serve_spec(request: web.Request) -> web.Response:
    return web.json_response(spec())
