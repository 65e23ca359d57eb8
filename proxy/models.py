"""Typed views of OpenAI requests, used to validate them; the raw dict is what is forwarded.

Unknown fields are allowed (and forwarded untouched): the proxy validates only what it
relies on, so new OpenAI parameters keep working without a proxy release.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from proxy.context import Route


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class StreamOptions(_Open):
    include_usage: bool | None = None


class ChatMessage(_Open):
    role: str = Field(min_length=1)
    content: str | list[dict[str, Any]] | None = None


class ChatRequest(_Open):
    model: str = Field(min_length=1)
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    n: int | None = Field(default=None, ge=1, le=128)


class CompletionRequest(_Open):
    model: str = Field(min_length=1)
    prompt: str | list[str] | list[int] | list[list[int]]
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(default=None, ge=0)


class ResponsesRequest(_Open):
    model: str = Field(min_length=1)
    input: str | list[dict[str, Any]] | None = None
    instructions: str | None = None
    stream: bool | None = False
    max_output_tokens: int | None = Field(default=None, ge=1)


class EmbeddingRequest(_Open):
    model: str = Field(min_length=1)
    input: str | list[str] | list[int] | list[list[int]]


MODELS: dict[Route, type[_Open]] = {
    Route.CHAT: ChatRequest,
    Route.COMPLETIONS: CompletionRequest,
    Route.RESPONSES: ResponsesRequest,
    Route.EMBEDDINGS: EmbeddingRequest,
}
