"""Shared fixtures: a fake upstream model server and the real proxy app on a free port."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from proxy.app import create_app
from proxy.devtools.fake_upstream import FakeUpstream
from proxy.devtools.redis_server import RedisServer, available
from proxy.runtime import RUNTIME, Runtime, Settings
from proxy.upstream.client import UpstreamSettings

REPO = Path(__file__).resolve().parent.parent
RULES = REPO / "rules"
DEV_KEY = "sk-guardrail-dev"
UPSTREAM_KEY = "sk-upstream-secret-do-not-leak"


@dataclass
class ProxyHandle:
    app: web.Application
    runner: web.AppRunner
    base_url: str  # ".../v1"
    root: str  # "http://127.0.0.1:PORT"

    @property
    def runtime(self) -> Runtime:
        return self.app[RUNTIME]


@pytest_asyncio.fixture(loop_scope="session", scope="session")
async def _upstream_server() -> AsyncIterator[FakeUpstream]:
    fake = FakeUpstream()
    await fake.start()
    yield fake
    await fake.close()


@pytest_asyncio.fixture(loop_scope="session")
async def upstream(_upstream_server: FakeUpstream) -> FakeUpstream:
    _upstream_server.reset()
    return _upstream_server


@pytest.fixture
def rules_copy(tmp_path: Path) -> Path:
    """A private copy of the shipped rules to edit in a test."""
    dest = tmp_path / "rules"
    shutil.copytree(RULES, dest)
    return dest


MakeProxy = Callable[..., Awaitable[ProxyHandle]]


async def serve_app(app: web.Application, runners: list[web.AppRunner]) -> ProxyHandle:
    """Run ``app`` on a free local port; the caller cleans up ``runners`` at teardown."""
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    runners.append(runner)
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    root = f"http://127.0.0.1:{port}"
    return ProxyHandle(app, runner, f"{root}/v1", root)


@pytest_asyncio.fixture(loop_scope="session")
async def make_proxy(upstream: FakeUpstream) -> AsyncIterator[MakeProxy]:
    runners: list[web.AppRunner] = []

    async def factory(
        rules_dir: Path | None = None, upstream_url: str | None = None, **upstream_opts: Any
    ) -> ProxyHandle:
        opts: dict[str, Any] = {"max_retries": 2, "backoff_base_s": 0.01, "backoff_max_s": 0.05}
        opts.update(upstream_opts)
        no_guards = bool(opts.pop("no_guards", False))
        redis_url = opts.pop("redis_url", None)
        client_timeout_s = float(opts.pop("client_timeout_s", 30.0))
        settings = Settings(
            rules_dir=(rules_dir or RULES).resolve(),
            upstream=replace(UpstreamSettings(url=upstream_url or upstream.url, api_key=UPSTREAM_KEY), **opts),
            redis_url=redis_url,
            no_guards=no_guards,
            client_timeout_s=client_timeout_s,
        )
        return await serve_app(create_app(settings), runners)

    yield factory
    for r in runners:
        await r.cleanup()


@pytest_asyncio.fixture(loop_scope="session")
async def proxy(make_proxy: MakeProxy) -> ProxyHandle:
    """The proxy with the shipped rules in front of the fake upstream."""
    return await make_proxy()


# Property tests: a short run in CI; bench/fuzz.py sets GUARDRAIL_FUZZ_EXAMPLES for a long one.
def fuzz_examples(default: int) -> int:
    raw = os.environ.get("GUARDRAIL_FUZZ_EXAMPLES")
    return int(raw) if raw else default


# Chart and Dockerfile tools (helm, kubernetes-validate, hadolint): `make setup` puts them in
# .venv/bin. Found by $ENV_VAR, beside this interpreter, then on PATH; in CI a missing tool fails.
def find_tool(env_var: str, name: str) -> str | None:
    for candidate in (os.environ.get(env_var), str(Path(sys.executable).parent / name), shutil.which(name)):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def require_tool(env_var: str, name: str) -> str:
    found = find_tool(env_var, name)
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is required in CI (make setup installs it into .venv/bin)")
        pytest.skip(f"{name} not found (make setup installs it; or set {env_var})")
    return found


# A real redis-server (state store and limits tests); in CI a missing Redis fails, never skips.
def require_redis() -> None:
    if not available():
        if os.environ.get("CI"):
            pytest.fail("redis-server is required in CI (apt-get install redis-server)")
        pytest.skip("redis-server not installed")


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    require_redis()
    with RedisServer() as server:
        yield server


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    """A Redis of its own, for tests that stop and restart it."""
    require_redis()
    server = RedisServer().start()
    yield server
    server.stop()
