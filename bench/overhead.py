"""Added latency and throughput of the proxy vs direct upstream vs LiteLLM's proxy.

    .venv/bin/python bench/overhead.py [--no-litellm] [--guards] [--requests 400] [--seconds 5]

Starts a fake upstream (no delay) and the proxies as separate processes, each proxy
pinned to core 1 (the upstream and this load generator share core 0), then measures
in one run, interleaved round by round:
  * added p50/p99 latency at concurrency 1, non-stream, and stream time-to-first-token;
  * the highest request rate whose p99 stays <= 50 ms, stepping up concurrency.
LiteLLM (``litellm[proxy]``) is installed on demand into bench/.litellm-venv (one
worker, no database). Prints a table and one JSON line per target.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
LITELLM_VENV = REPO / "bench" / ".litellm-venv"
sys.path.insert(0, str(REPO))

from tests.live import stop_all  # noqa: E402

KEY = "sk-guardrail-dev"
BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hello in one short sentence."}]}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pinned(cmd: list[str], core: int) -> list[str]:
    return ["taskset", "-c", str(core), *cmd] if shutil.which("taskset") else cmd


async def wait_ready(url: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as s:
        while time.monotonic() < deadline:
            try:
                async with s.get(url) as r:
                    if r.status < 500:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


def ensure_litellm() -> Path:
    exe = LITELLM_VENV / "bin" / "litellm"
    if not exe.exists():
        print("installing litellm[proxy] into bench/.litellm-venv (once) ...", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(LITELLM_VENV)], check=True)
        subprocess.run([str(LITELLM_VENV / "bin" / "pip"), "install", "-q", "litellm[proxy]"], check=True)
    return exe


def litellm_config(upstream: str) -> Path:
    cfg = Path(tempfile.mkdtemp()) / "litellm.yaml"
    cfg.write_text(
        "model_list:\n"
        "  - model_name: gpt-4o-mini\n"
        "    litellm_params:\n"
        "      model: openai/gpt-4o-mini\n"
        f"      api_base: {upstream}\n"
        "      api_key: sk-fake\n"
        "general_settings:\n"
        f"  master_key: {KEY}\n"
        "litellm_settings:\n"
        "  drop_params: true\n"
        "  set_verbose: false\n"
    )
    return cfg


async def one(session: aiohttp.ClientSession, url: str, stream: bool) -> float:
    body = {**BODY, "stream": True} if stream else BODY
    t0 = time.perf_counter()
    async with session.post(url + "/chat/completions", json=body, headers={"Authorization": f"Bearer {KEY}"}) as r:
        if r.status != 200:
            raise RuntimeError(f"{url}: HTTP {r.status}: {(await r.text())[:200]}")
        if stream:
            async for line in r.content:
                if line.startswith(b"data: ") and b'"content"' in line and b'"content":""' not in line:
                    ttft = time.perf_counter() - t0
                    await r.read()
                    return ttft
            return time.perf_counter() - t0
        await r.read()
    return time.perf_counter() - t0


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))] * 1000


async def latency_round(targets: dict[str, str], n: int, stream: bool) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {name: [] for name in targets}
    async with aiohttp.ClientSession() as s:
        for url in targets.values():  # warm up
            for _ in range(20):
                await one(s, url, stream)
        for _ in range(n):  # interleaved: one request to each target per round
            for name, url in targets.items():
                out[name].append(await one(s, url, stream))
    return out


async def rate_at(url: str, concurrency: int, seconds: float) -> tuple[float, float, int]:
    lat: list[float] = []
    errors = 0
    stop = time.perf_counter() + seconds
    conn = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=conn) as s:

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < stop:
                try:
                    lat.append(await one(s, url, False))
                except Exception:
                    errors += 1

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - t0
    return len(lat) / elapsed, pct(lat, 99) if lat else float("inf"), errors


async def max_rate(targets: dict[str, str], seconds: float) -> dict[str, dict[str, float]]:
    best: dict[str, dict[str, float]] = {name: {"rps": 0.0, "p99_ms": 0.0, "concurrency": 0} for name in targets}
    done: set[str] = set()
    for conc in (1, 2, 4, 8, 16, 32, 64, 128):
        for name, url in targets.items():  # interleaved by concurrency step
            if name in done:
                continue
            rps, p99, errors = await rate_at(url, conc, seconds)
            print(f"  {name:>8} c={conc:<4} {rps:8.0f} req/s  p99 {p99:7.1f} ms  errors {errors}", file=sys.stderr)
            if p99 <= 50 and errors == 0 and rps > best[name]["rps"]:
                best[name] = {"rps": rps, "p99_ms": p99, "concurrency": conc}
            if p99 > 50:
                done.add(name)
    return best


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=400, help="requests per target for the latency rounds")
    ap.add_argument("--seconds", type=float, default=5.0, help="seconds per throughput step")
    ap.add_argument("--no-litellm", action="store_true")
    ap.add_argument(
        "--guards", action="store_true", help="run this proxy with the shipped guards instead of --no-guards"
    )
    args = ap.parse_args()

    procs: list[subprocess.Popen[bytes]] = []
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    try:
        up_port = free_port()
        procs.append(
            subprocess.Popen(
                pinned(
                    [
                        str(VENV_BIN / "guardrail-proxy"),
                        "fake-upstream",
                        "--port",
                        str(up_port),
                        "--text",
                        "Hello there, friend!",
                    ],
                    0,
                ),
                env=env,
                stdout=subprocess.DEVNULL,
            )
        )
        upstream = f"http://127.0.0.1:{up_port}/v1"
        await wait_ready(f"http://127.0.0.1:{up_port}/v1/models")
        targets = {"direct": upstream}

        gp_port = free_port()
        cmd = [
            str(VENV_BIN / "guardrail-proxy"),
            "serve",
            "--port",
            str(gp_port),
            "--upstream",
            upstream,
            "--rules",
            str(REPO / "rules"),
            "--log-level",
            "warning",
        ]
        if not args.guards:
            cmd.append("--no-guards")
        procs.append(subprocess.Popen(pinned(cmd, 1), env=env, stderr=subprocess.DEVNULL))
        await wait_ready(f"http://127.0.0.1:{gp_port}/healthz")
        targets["guardrail"] = f"http://127.0.0.1:{gp_port}/v1"

        if not args.no_litellm:
            exe = ensure_litellm()
            ll_port = free_port()
            procs.append(
                subprocess.Popen(
                    pinned(
                        [
                            str(exe),
                            "--config",
                            str(litellm_config(upstream)),
                            "--port",
                            str(ll_port),
                            "--num_workers",
                            "1",
                        ],
                        1,
                    ),
                    env={**env, "LITELLM_LOG": "ERROR"},
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            await wait_ready(f"http://127.0.0.1:{ll_port}/health/liveliness", timeout=300)
            targets["litellm"] = f"http://127.0.0.1:{ll_port}/v1"

        print("latency at concurrency 1 (non-stream) ...", file=sys.stderr, flush=True)
        whole = await latency_round(targets, args.requests, stream=False)
        print("time to first token at concurrency 1 (stream) ...", file=sys.stderr, flush=True)
        ttft = await latency_round(targets, args.requests, stream=True)
        print("max req/s with p99 <= 50 ms ...", file=sys.stderr, flush=True)
        rates = await max_rate(targets, args.seconds)

        base50, base99, baset = pct(whole["direct"], 50), pct(whole["direct"], 99), pct(ttft["direct"], 50)
        rows = []
        for name in targets:
            rows.append(
                {
                    "target": name,
                    "guards": ("shipped" if args.guards else "off") if name == "guardrail" else None,
                    "p50_ms": round(pct(whole[name], 50), 3),
                    "p99_ms": round(pct(whole[name], 99), 3),
                    "added_p50_ms": round(pct(whole[name], 50) - base50, 3),
                    "added_p99_ms": round(pct(whole[name], 99) - base99, 3),
                    "stream_ttft_p50_ms": round(pct(ttft[name], 50), 3),
                    "added_ttft_p50_ms": round(pct(ttft[name], 50) - baset, 3),
                    "max_rps_p99_le_50ms": round(rates[name]["rps"], 1),
                    "at_concurrency": rates[name]["concurrency"],
                }
            )
        print(f"\n{'target':>10} {'p50 ms':>8} {'+p50':>8} {'+p99':>8} {'+TTFT':>8} {'req/s@p99<=50ms':>16}")
        for r in rows:
            print(
                f"{r['target']:>10} {r['p50_ms']:8.3f} {r['added_p50_ms']:8.3f} {r['added_p99_ms']:8.3f} "
                f"{r['added_ttft_p50_ms']:8.3f} {r['max_rps_p99_le_50ms']:16.1f}"
            )
        if "litellm" in targets:
            g = next(r for r in rows if r["target"] == "guardrail")
            ll = next(r for r in rows if r["target"] == "litellm")
            ratio_lat = g["added_p50_ms"] / ll["added_p50_ms"] if ll["added_p50_ms"] > 0 else float("nan")
            ratio_rps = (
                g["max_rps_p99_le_50ms"] / ll["max_rps_p99_le_50ms"] if ll["max_rps_p99_le_50ms"] else float("inf")
            )
            print(f"\nadded p50 vs LiteLLM: {ratio_lat:.3f}x   req/s vs LiteLLM: {ratio_rps:.1f}x")
        for r in rows:
            print(json.dumps(r))
    finally:
        stop_all(procs)


if __name__ == "__main__":
    asyncio.run(main())
