"""Cost of the output guards on streams, for hold-back windows of 0, 64 and 256 characters.

    .venv/bin/python bench/output_window.py [--chunks 400] [--requests 30]

Two measurements, with the shipped response guards of rules/ (whatever
rules/pipeline.yaml turns on; of the request guards only ``canary`` and ``pii`` run
(``--request-guards``): they hold what the output guards compare against, the planted
canary and the request's own personal data for the output PII signal):

1. Per-chunk cost, in process, pinned to one core: the real ``ChunkRelay`` turns
   upstream SSE chunks (4-character deltas, as models send them) into client frames
   through every response guard; printed as mean and p99 microseconds per chunk. The
   end of each stream (every signal's ``finish``: PII analysis, injection echo, drift
   embedding) is timed apart, as ms per stream.
2. Added time to first token, end to end: a fake upstream streams 4-character chunks
   every 2 ms; TTFT is measured direct and through the proxy (one process per window,
   pinned to core 1). The window must fill before the first text may leave, so the
   printed "beyond fill" figure subtracts the time the upstream takes to send
   ``window`` characters.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from proxy.context import Principal, RequestContext, Route  # noqa: E402
from proxy.pipeline.runner import run_request_guards  # noqa: E402
from proxy.rules.ruleset import build_ruleset  # noqa: E402
from proxy.services import Services  # noqa: E402
from proxy.streaming.chunks import ChunkRelay  # noqa: E402
from proxy.streaming.sse import SSEEvent  # noqa: E402
from tests.live import stop_all, wait_ready  # noqa: E402

WINDOWS = (0, 64, 256)
CHUNK_CHARS = 4
CHUNK_DELAY_S = 0.002
SYSTEM = "You are the support assistant of Example Corp. Answer briefly and politely, in English."
ANSWER = (
    "Thanks for reaching out. Our return policy allows returns within thirty days of delivery, "
    "with the receipt. Refunds go back to the original payment method within five business days. "
) * 8


REQUEST_GUARDS = ("canary", "pii")


def rules_with_window(window: int, request_guards: tuple[str, ...] = REQUEST_GUARDS) -> Path:
    tmp = Path(tempfile.mkdtemp(prefix="gr-window-"))
    shutil.copytree(REPO / "rules", tmp / "rules")
    path = tmp / "rules" / "pipeline.yaml"
    data = yaml.safe_load(path.read_text())
    data.setdefault("stream", {})["window_chars"] = window
    # Only what the output guards need on the request side (the canary they look for, the
    # request's own PII): this bench isolates the cost of the response guards.
    data["request"] = [e for e in data["request"] if e["guard"] in request_guards]
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return tmp / "rules"


def chunk_event(i: int, text: str) -> SSEEvent:
    body = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}],
    }
    return SSEEvent(data=json.dumps(body))


async def per_chunk(
    window: int, services: Services, n_chunks: int, rounds: int, request_guards: tuple[str, ...]
) -> dict[str, float]:
    rules = build_ruleset(rules_with_window(window, request_guards), services)
    pieces = [ANSWER[i : i + CHUNK_CHARS] for i in range(0, len(ANSWER), CHUNK_CHARS)][:n_chunks]
    events = [chunk_event(i, p) for i, p in enumerate(pieces)]
    per: list[float] = []
    ends: list[float] = []
    for r in range(rounds):
        body = {
            "model": "gpt-4o-mini",
            "stream": True,
            "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "Return policy?"}],
        }
        ctx = RequestContext(f"bench-{window}-{r}", Route.CHAT, Principal("dev", "dev"), body, b"", stream=True)
        await run_request_guards(rules.request, ctx)
        relay = ChunkRelay(ctx, rules.response, window, chat=True, client_wants_usage=True)
        for ev in events:
            t0 = time.perf_counter()
            await relay.on_event(ev)
            per.append((time.perf_counter() - t0) * 1e6)
        t0 = time.perf_counter()
        await relay.finish()
        ends.append((time.perf_counter() - t0) * 1000)
    per.sort()
    return {
        "mean_us": statistics.fmean(per),
        "p50_us": per[len(per) // 2],
        "p99_us": per[int(len(per) * 0.99)],
        "guards": len(rules.response),
        "finish_ms": statistics.median(ends),
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def arrivals(session: aiohttp.ClientSession, base: str) -> list[tuple[int, float]]:
    """(characters received so far, ms since the request) for every content delta."""
    body = {
        "model": "gpt-4o-mini",
        "stream": True,
        "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "Return policy?"}],
    }
    t0 = time.perf_counter()
    seen = 0
    out: list[tuple[int, float]] = []
    async with session.post(
        f"{base}/chat/completions", json=body, headers={"Authorization": "Bearer sk-guardrail-dev"}
    ) as r:
        async for line in r.content:
            if not line.startswith(b"data: {"):
                continue
            for choice in json.loads(line[6:]).get("choices") or []:
                text = (choice.get("delta") or {}).get("content") or ""
                if text:
                    seen += len(text)
                    out.append((seen, (time.perf_counter() - t0) * 1000))
    if not out:
        raise RuntimeError(f"no content from {base}")
    return out


def first_after(points: list[tuple[int, float]], chars: int) -> float:
    """When the stream had delivered more than ``chars`` characters."""
    return next(ms for n, ms in points if n > chars)


async def end_to_end(requests: int, request_guards: tuple[str, ...]) -> dict[int, dict[str, float]]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    exe = str(REPO / ".venv" / "bin" / "guardrail-proxy")
    up_port = free_port()
    procs = [
        subprocess.Popen(
            ["taskset", "-c", "0", exe, "fake-upstream", "--port", str(up_port), "--text", ANSWER,
             "--chunk-chars", str(CHUNK_CHARS), "--chunk-delay-ms", str(CHUNK_DELAY_S * 1000)],
            env=env, stdout=subprocess.DEVNULL,
        )
    ]
    upstream = f"http://127.0.0.1:{up_port}/v1"
    targets: dict[int, str] = {}
    try:
        for window in WINDOWS:
            port = free_port()
            procs.append(
                subprocess.Popen(
                    ["taskset", "-c", "1", exe, "serve", "--port", str(port), "--upstream", upstream,
                     "--rules", str(rules_with_window(window, request_guards))],
                    env={**env, "GUARDRAIL_UPSTREAM_API_KEY": "sk-upstream-bench"},
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                )
            )
            targets[window] = f"http://127.0.0.1:{port}"
        await wait_ready(f"http://127.0.0.1:{up_port}/v1/models")
        for root in targets.values():
            await wait_ready(f"{root}/healthz")
        samples: dict[int, list[float]] = {w: [] for w in WINDOWS}
        fill: dict[int, list[float]] = {w: [] for w in WINDOWS}
        direct: list[float] = []
        async with aiohttp.ClientSession() as s:
            for root in targets.values():  # warm up: model loads, first connections
                for _ in range(3):
                    await arrivals(s, f"{root}/v1")
            for _ in range(requests):  # interleaved rounds
                d = await arrivals(s, upstream)
                direct.append(d[0][1])
                for window, root in targets.items():
                    # The window needs `window` characters behind the first one before it may leave:
                    # the direct stream says when the upstream had sent them.
                    fill[window].append(first_after(d, window) - d[0][1])
                    samples[window].append((await arrivals(s, f"{root}/v1"))[0][1])
        out: dict[int, dict[str, float]] = {}
        direct_med = statistics.median(direct)
        for window in WINDOWS:
            med = statistics.median(samples[window])
            fill_ms = statistics.median(fill[window])
            out[window] = {
                "ttft_direct_ms": direct_med,
                "ttft_proxy_ms": med,
                "added_ms": med - direct_med,
                "window_fill_ms": fill_ms,
                "added_beyond_fill_ms": med - direct_med - fill_ms,
            }
        return out
    finally:
        stop_all(procs)


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--chunks", type=int, default=400)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--requests", type=int, default=30)
    ap.add_argument("--request-guards", default=",".join(REQUEST_GUARDS), help="request guards that run (comma list)")
    args = ap.parse_args()
    req_guards = tuple(g for g in args.request_guards.split(",") if g)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.sched_setaffinity(0, {0})
    services = Services()
    services.embedder()  # loaded before timing
    print(f"per-chunk cost through the shipped response guards ({CHUNK_CHARS}-char deltas, 1 core)")
    print(f"request guards run first (untimed): {', '.join(req_guards) or 'none'}")
    print(f"{'window':>7} {'guards':>6} {'mean µs':>9} {'p50 µs':>8} {'p99 µs':>8} {'end ms':>7}")
    chunk_rows = {}
    for window in WINDOWS:
        row = await per_chunk(window, services, args.chunks, args.rounds, req_guards)
        chunk_rows[window] = row
        print(
            f"{window:>7} {row['guards']:>6} {row['mean_us']:>9.1f} {row['p50_us']:>8.1f} {row['p99_us']:>8.1f}"
            f" {row['finish_ms']:>7.1f}"
        )
    services.close()
    os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
    print(f"\ntime to first token ({CHUNK_CHARS}-char chunks every {CHUNK_DELAY_S * 1000:.0f} ms, median of {args.requests})")
    e2e = await end_to_end(args.requests, req_guards)
    print(f"{'window':>7} {'direct ms':>10} {'proxy ms':>9} {'added ms':>9} {'fill ms':>8} {'beyond fill ms':>15}")
    for window, row in e2e.items():
        print(
            f"{window:>7} {row['ttft_direct_ms']:>10.2f} {row['ttft_proxy_ms']:>9.2f} {row['added_ms']:>9.2f}"
            f" {row['window_fill_ms']:>8.2f} {row['added_beyond_fill_ms']:>15.2f}"
        )
    for window in WINDOWS:
        print(json.dumps({"window": window, **chunk_rows[window], **e2e[window]}))


if __name__ == "__main__":
    asyncio.run(main())
