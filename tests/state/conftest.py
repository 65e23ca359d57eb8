"""A real redis-server for the state store tests (in CI a missing Redis fails, never skips)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from proxy.devtools.redis_server import RedisServer, available


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
