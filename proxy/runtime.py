"""Typed application state (one ``web.AppKey``), built once per process."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from proxy.observe import LogObserver, Observer
from proxy.rules.holder import RulesHolder
from proxy.services import Services
from proxy.upstream.client import Upstream, UpstreamSettings


@dataclass(frozen=True)
class Settings:
    rules_dir: Path
    upstream: UpstreamSettings = field(default_factory=UpstreamSettings)
    redis_url: str | None = None
    no_guards: bool = False
    client_timeout_s: float = 30.0  # a client must send its whole request body within this


@dataclass
class Runtime:
    settings: Settings
    services: Services
    rules: RulesHolder
    upstream: Upstream
    observers: list[Observer] = field(default_factory=lambda: [LogObserver()])


RUNTIME = web.AppKey("runtime", Runtime)
