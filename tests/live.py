"""The proxy and the fake upstream as real processes, for tests that need a separate server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up in {timeout}s")


async def wait_ready(url: str, procs: Sequence[subprocess.Popen[bytes]] = (), limit_s: float = 600.0) -> None:
    """Poll ``url`` until it answers 200 (async); fail early if one of ``procs`` has exited."""
    import asyncio

    import aiohttp

    deadline = time.monotonic() + limit_s
    async with aiohttp.ClientSession() as s:
        while time.monotonic() < deadline:
            if any(p.poll() is not None for p in procs):
                raise RuntimeError("a proxy process exited during start-up")
            try:
                async with s.get(url) as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError(f"{url} did not become ready")


def stop_all(procs: Sequence[subprocess.Popen[bytes]]) -> None:
    """SIGTERM every process, then wait up to 10 s each before SIGKILL."""
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


@contextmanager
def live_proxy(
    rules: Path | None = None, extra_env: dict[str, str] | None = None, no_guards: bool = False
) -> Iterator[str]:
    """Yields the proxy's base URL (".../v1") with a fake upstream behind it."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", **(extra_env or {})}
    up_port, px_port = free_port(), free_port()
    procs = [
        subprocess.Popen(
            [str(BIN / "guardrail-proxy"), "fake-upstream", "--port", str(up_port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    ]
    try:
        wait_http(f"http://127.0.0.1:{up_port}/v1/models")
        cmd = [
            str(BIN / "guardrail-proxy"),
            "serve",
            "--port",
            str(px_port),
            "--upstream",
            f"http://127.0.0.1:{up_port}/v1",
            "--rules",
            str(rules or REPO / "rules"),
            "--log-level",
            "warning",
        ]
        if no_guards:
            cmd.append("--no-guards")
        procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_http(f"http://127.0.0.1:{px_port}/healthz")
        yield f"http://127.0.0.1:{px_port}/v1"
    finally:
        stop_all(procs)
