"""``rules/pipeline.yaml``: which guards run, in which order, in which mode."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from proxy.rules.loader import Strict


class GuardEntry(Strict):
    guard: str
    enabled: bool = True
    mode: Literal["enforce", "monitor"] = "enforce"
    timeout_ms: int = Field(default=2000, gt=0, le=60_000)
    # What a guard that raises or times out means for the request.
    on_error: Literal["block", "allow"] = "block"
    options: dict[str, Any] = Field(default_factory=dict)


class StreamConfig(Strict):
    # Characters held back so response guards see them before the client does.
    window_chars: int = Field(default=64, ge=0, le=65_536)


class ServerConfig(Strict):
    max_body_bytes: int = Field(default=4 * 1024 * 1024, gt=0)
    max_json_depth: int = Field(default=64, gt=0, le=1000)
    # Other /v1/* paths: forward to the upstream as they are, or refuse with 404.
    other_v1_paths: Literal["forward", "refuse"] = "refuse"
    trust_system_prompt: bool = True


class PipelineFile(Strict):
    schema_version: Literal[1]
    request: list[GuardEntry] = Field(default_factory=list)
    response: list[GuardEntry] = Field(default_factory=list)
    stream: StreamConfig = Field(default_factory=StreamConfig)
    server: ServerConfig = Field(default_factory=ServerConfig)
