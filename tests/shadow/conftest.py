"""Fixtures for the platform extras: the proxy with an extension installed, a candidate upstream.

``start_proxy`` mirrors the shared ``make_proxy`` fixture but calls the packages'
``install(app)`` (idempotent, so it keeps working once create_app installs them) and
registers the shadow guard the way proxy/pipeline/registry.py will.
"""

from __future__ import annotations

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
from proxy.pipeline.registry import REGISTRY, GuardSpec
from proxy.runtime import Settings
from proxy.upstream.client import UpstreamSettings
from tests.conftest import UPSTREAM_KEY, ProxyHandle, serve_app

Installer = Callable[[web.Application], None]
StartProxy = Callable[..., Awaitable[ProxyHandle]]


@pytest.fixture(autouse=True)
def shadow_guard_registered(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setitem(REGISTRY, "shadow", GuardSpec("response", "proxy.shadow.guard:build"))
    yield


@pytest_asyncio.fixture(loop_scope="session", scope="session")
async def _candidate_server() -> AsyncIterator[FakeUpstream]:
    fake = FakeUpstream()
    await fake.start()
    yield fake
    await fake.close()


@pytest_asyncio.fixture(loop_scope="session")
async def candidate(_candidate_server: FakeUpstream) -> FakeUpstream:
    """A second fake provider: where shadow calls go."""
    _candidate_server.reset()
    return _candidate_server


@pytest_asyncio.fixture(loop_scope="session")
async def start_proxy(upstream: FakeUpstream) -> AsyncIterator[StartProxy]:
    runners: list[web.AppRunner] = []

    async def factory(rules_dir: Path, *installers: Installer) -> ProxyHandle:
        settings = Settings(
            rules_dir=rules_dir,  # tmp_path copies: already absolute
            upstream=replace(UpstreamSettings(url=upstream.url, api_key=UPSTREAM_KEY), max_retries=0),
        )
        app = create_app(settings)
        for install in installers:
            install(app)
        return await serve_app(app, runners)

    yield factory
    for r in runners:
        await r.cleanup()


def write_yaml(path: Path, data: Any) -> None:
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def with_response_guard(rules_dir: Path, name: str, **entry: Any) -> None:
    path = rules_dir / "pipeline.yaml"
    data = yaml.safe_load(path.read_text())
    kept = [e for e in data.get("response") or [] if e["guard"] != name]  # the shipped entry, if any
    data["response"] = [*kept, {"guard": name, **entry}]
    write_yaml(path, data)
