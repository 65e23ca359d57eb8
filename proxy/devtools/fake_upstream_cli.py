"""``guardrail-proxy fake-upstream``: a local fake OpenAI server for demos and benchmarks."""

from __future__ import annotations

import argparse
import asyncio

from proxy.devtools.fake_upstream import FakeUpstream, Reply


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--text", default=None, help="fixed answer (default: echo the last user message)")


async def _serve(args: argparse.Namespace) -> None:
    fake = FakeUpstream()
    fake.default = Reply(text=args.text)
    url = await fake.start(args.host, args.port)
    print(f"fake upstream listening on {url}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await fake.close()


def run(args: argparse.Namespace) -> int:
    try:
        asyncio.run(_serve(args))
    except KeyboardInterrupt:
        pass
    return 0
