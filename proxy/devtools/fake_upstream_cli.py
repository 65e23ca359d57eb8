"""``guardrail-proxy fake-upstream``: a local fake OpenAI server for demos and benchmarks."""

from __future__ import annotations

import argparse
import asyncio

from proxy.devtools.fake_upstream import FakeUpstream, Reply


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--text", default=None, help="fixed answer (default: echo the last user message)")
    parser.add_argument("--chunk-chars", type=int, default=0, help="stream the fixed answer in pieces of this size")
    parser.add_argument("--chunk-delay-ms", type=float, default=0.0, help="pause between stream chunks")


async def _serve(args: argparse.Namespace) -> None:
    fake = FakeUpstream()
    chunks = None
    if args.text and args.chunk_chars > 0:
        chunks = [args.text[i : i + args.chunk_chars] for i in range(0, len(args.text), args.chunk_chars)]
    fake.default = Reply(text=args.text, chunks=chunks, chunk_delay_s=args.chunk_delay_ms / 1000)
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
