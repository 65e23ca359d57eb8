"""Fixtures shared by the output-guard, approved-answer and correction tests.

``guarded_proxy`` mirrors the shared ``make_proxy`` fixture but hands every app a
``Services`` whose embedder is the one model loaded for the whole test session, and
registers the guards the way proxy/pipeline/registry.py will.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import yaml
from aiohttp import web

from proxy.app import create_app
from proxy.devtools.fake_upstream import FakeUpstream
from proxy.guards.output.vectors import shared_model
from proxy.pipeline.registry import REGISTRY, GuardSpec
from proxy.runtime import Settings
from proxy.services import Services
from proxy.upstream.client import UpstreamSettings
from tests.conftest import UPSTREAM_KEY, ProxyHandle, serve_app

GUARDS = {
    "approved": GuardSpec("request", "proxy.guards.approved:build"),
    "canary": GuardSpec("request", "proxy.guards.output.canary:build"),
    "canary_output": GuardSpec("response", "proxy.guards.output.canary:build_response"),
    "output_anomaly": GuardSpec("response", "proxy.guards.output.score:build"),
    "corrections": GuardSpec("response", "proxy.guards.corrections:build"),
}
GuardedProxy = Callable[..., Awaitable[ProxyHandle]]


@functools.cache
def session_model() -> Any:
    """The embedding model, loaded once for the whole test session."""
    return shared_model(Services())


def services() -> Services:
    return Services(_embedder=session_model())


@pytest.fixture(autouse=True)
def output_guards_registered(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, spec in GUARDS.items():
        monkeypatch.setitem(REGISTRY, name, spec)
    yield


def enable(
    rules_dir: Path,
    request: list[str] = (),  # type: ignore[assignment]
    response: list[str] = (),  # type: ignore[assignment]
    window: int | None = None,
    **entry: Any,
) -> None:
    """Turn guards on in a test's own rules/pipeline.yaml (appended after the shipped ones)."""
    path = rules_dir / "pipeline.yaml"
    data = yaml.safe_load(path.read_text())
    # The shipped pipeline already runs output-family guards: a test runs exactly the ones it names.
    names = {*request, *response, *GUARDS, "shadow"}
    kept_req = [e for e in data.get("request") or [] if e["guard"] not in names]
    kept_resp = [e for e in data.get("response") or [] if e["guard"] not in names]
    data["request"] = [*kept_req, *({"guard": g, **entry} for g in request)]
    data["response"] = [*kept_resp, *({"guard": g, **entry} for g in response)]
    if window is not None:
        data.setdefault("stream", {})["window_chars"] = window
    path.write_text(yaml.safe_dump(data))


@pytest_asyncio.fixture(loop_scope="session")
async def guarded_proxy(upstream: FakeUpstream) -> AsyncIterator[GuardedProxy]:
    runners: list[web.AppRunner] = []

    async def factory(rules_dir: Path) -> ProxyHandle:
        settings = Settings(
            rules_dir=rules_dir,
            upstream=replace(UpstreamSettings(url=upstream.url, api_key=UPSTREAM_KEY), max_retries=0),
        )
        return await serve_app(create_app(settings, services()), runners)

    yield factory
    for r in runners:
        await r.cleanup()
