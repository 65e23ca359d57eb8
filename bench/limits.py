"""Can concurrent requests overspend a budget shared by proxy replicas? (issue 6)

    .venv/bin/python bench/limits.py [--replicas 3] [--clients 200] [--allowed 50]
        [--usage worst|typical] [--latency-samples 2000]

Starts a throwaway redis-server, a fake upstream (in this process; it reports usage =
the prompt estimate + a fixed share of the output cap) and N ``guardrail-proxy serve``
processes sharing that Redis, with only the limit guards in the pipeline and one team
budget in USD that fits exactly ``--allowed`` reservations. ``--clients`` concurrent
clients then send requests until each has been refused once; a final sequential drain
sends requests until one is refused. Prints one JSON line:

  admitted, allowed (what the budget fits at the reservation size; with --usage worst
  admitted must equal it), budget_usd, spent_usd (settled, read from Redis),
  overspend_usd (must be 0), underuse (budget left unspent, in reservations; must be < 1),
  redis round trips per admission (EVALSHA calls counted in INFO commandstats), and the
  limits check's own latency (estimate + admission, and settle) p50/p99 for the memory
  and Redis stores, measured in-process on the real guard; and, for contrast, the same
  clients against a check-then-add budget (read spend, compare, call, add after: the
  pattern LiteLLM's proxy uses) on the same Redis.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from proxy.context import Principal, RequestContext, Route  # noqa: E402
from proxy.devtools.fake_upstream import FakeUpstream, Reply  # noqa: E402
from proxy.devtools.redis_server import RedisServer, free_port  # noqa: E402
from proxy.guards.limits import LimitsGuard  # noqa: E402
from proxy.limits import tokens  # noqa: E402
from proxy.limits.policy import LimitsPolicy  # noqa: E402
from proxy.limits.pricing import load_pricing  # noqa: E402
from proxy.policy.schema import PolicyFile  # noqa: E402
from proxy.state.memory import MemoryStore  # noqa: E402
from proxy.state.redis_store import RedisStore  # noqa: E402
from proxy.state.store import NANO, Periods, Quota, Subject  # noqa: E402
from tests.live import stop_all, wait_ready  # noqa: E402

KEY = "sk-bench-limits-key"
MODEL = "gpt-4o-mini"
CAP = 1000
BODY = {
    "model": MODEL,
    "messages": [{"role": "user", "content": "Say hello in one short sentence."}],
    "max_tokens": CAP,
}


def policy(team: str, budget_usd: float, fail_mode: str = "closed") -> dict[str, Any]:
    return {
        "schema_version": 1,
        "teams": {team: {"budget": {"usd_per_day": budget_usd}}},
        "keys": [{"id": "bench", "team": team, "key": KEY, "models": [MODEL]}],
        "models": {MODEL: {"pin": MODEL}},
        "limits": {"conversation": {"max_tokens": CAP}, "fail_mode": fail_mode},
    }


def rules_dir(tmp: Path, team: str, budget_usd: float, fail_mode: str) -> Path:
    dest = tmp / "rules"
    shutil.copytree(REPO / "rules", dest)
    pipeline = yaml.safe_load((dest / "pipeline.yaml").read_text())
    pipeline["request"] = [
        {"guard": "limits", "timeout_ms": 15000, "on_error": "block"},
        {"guard": "conversation_limits", "timeout_ms": 15000, "on_error": "block"},
    ]
    pipeline["response"] = []
    (dest / "pipeline.yaml").write_text(yaml.safe_dump(pipeline))
    (dest / "policy.yaml").write_text(yaml.safe_dump(policy(team, budget_usd, fail_mode)))
    return dest


async def client(session: aiohttp.ClientSession, urls: list[str], i: int, out: list[int], flagged: list[int]) -> None:
    """Send requests (round robin over the replicas) until one is refused."""
    n = i
    while True:
        async with session.post(
            urls[n % len(urls)] + "/v1/chat/completions", json=BODY, headers={"Authorization": f"Bearer {KEY}"}
        ) as r:
            await r.read()
            out.append(r.status)
            if r.headers.get("x-guardrail-decision") == "flag":  # admitted without limits (fail open)
                flagged.append(r.status)
            if r.status != 200:
                return
        n += 1


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)


async def check_latency(store: Any, samples: int, prices: Any, team: str) -> dict[str, float]:
    """The real guard's check (tiktoken estimate + one admission) and its settle, in ms."""
    pol = PolicyFile.model_validate(policy(team, 1e6))
    guard = LimitsGuard(LimitsPolicy.compile(pol), prices, services=type("S", (), {"state": store, "cpu": None})())
    check_ms: list[float] = []
    settle_ms: list[float] = []
    for i in range(samples):
        ctx = RequestContext(uuid.uuid4().hex, Route.CHAT, Principal("bench", team), dict(BODY), b"")
        ctx.upstream_model = MODEL
        t0 = time.perf_counter()
        await guard.check(ctx)
        t1 = time.perf_counter()
        await guard.finalize(ctx)
        t2 = time.perf_counter()
        if i >= samples // 10:  # warm-up excluded
            check_ms.append((t1 - t0) * 1000)
            settle_ms.append((t2 - t1) * 1000)
    return {
        "check_p50_ms": pct(check_ms, 0.5),
        "check_p99_ms": pct(check_ms, 0.99),
        "settle_p50_ms": pct(settle_ms, 0.5),
        "settle_p99_ms": pct(settle_ms, 0.99),
    }


async def check_then_add(redis_url: str, clients: int, per_request: int, budget_nano: int, delay_s: float) -> dict:
    """The pattern this replaces (LiteLLM-style): read the spend, compare, call, add after."""
    store = RedisStore(redis_url)
    key = "baseline-" + uuid.uuid4().hex[:6]
    admitted = 0

    async def one() -> None:
        nonlocal admitted
        spent = int(await store.client.get(key) or 0)
        if spent + per_request > budget_nano:
            return
        admitted += 1
        await asyncio.sleep(delay_s)  # the upstream call
        await store.client.incrby(key, per_request)

    await asyncio.gather(*(one() for _ in range(clients)))
    spent = int(await store.client.get(key) or 0)
    await store.close()
    return {"admitted": admitted, "overspend_usd": max(0, spent - budget_nano) / NANO}


async def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--replicas", type=int, default=3)
    ap.add_argument("--clients", type=int, default=200)
    ap.add_argument("--allowed", type=int, default=50, help="reservations the budget fits")
    ap.add_argument(
        "--usage",
        choices=["worst", "typical"],
        default="worst",
        help="worst: usage = the whole reservation; typical: a third of the output cap",
    )
    ap.add_argument("--upstream-delay-ms", type=float, default=100.0)
    ap.add_argument("--latency-samples", type=int, default=2000)
    ap.add_argument(
        "--fail-mode",
        choices=["open", "closed"],
        default="closed",
        help="what a Redis timeout means (open: admitted unchecked, which can overspend by design)",
    )
    ap.add_argument("--redis-timeout", type=float, default=5.0, help="socket/connect timeout in the Redis URL (s)")
    ap.add_argument("--keep-logs", default=None, help="copy the proxies' logs into this directory")
    args = ap.parse_args()

    prices = load_pricing(REPO / "rules")
    prompt = tokens.prompt_tokens(Route.CHAT, BODY, tokens.for_model(MODEL))
    per_request = prices.nano_usd(MODEL, prompt, CAP)
    assert per_request is not None
    budget_nano = args.allowed * per_request
    budget_usd = budget_nano / NANO
    team = "bench-" + uuid.uuid4().hex[:6]
    completion = CAP if args.usage == "worst" else CAP // 3

    redis = RedisServer().start()
    fake = FakeUpstream()
    fake.default = Reply(text="Hello!", usage=(prompt, completion), delay_s=args.upstream_delay_ms / 1000)
    up_url = await fake.start()
    procs: list[subprocess.Popen[bytes]] = []
    tmp = Path(tempfile.mkdtemp(prefix="limits-bench-"))
    try:
        rules = rules_dir(tmp, team, budget_usd, args.fail_mode)
        redis_url = f"{redis.url}?socket_timeout={args.redis_timeout}&socket_connect_timeout={args.redis_timeout}"
        env = {**os.environ, "GUARDRAIL_REDIS_URL": redis_url, "HF_HUB_OFFLINE": "1", "GUARDRAIL_LOG_LEVEL": "error"}
        ports = [free_port() for _ in range(args.replicas)]
        exe = str(Path(sys.executable).parent / "guardrail-proxy")
        for port in ports:
            procs.append(
                subprocess.Popen(
                    [
                        exe,
                        "serve",
                        "--port",
                        str(port),
                        "--rules",
                        str(rules),
                        "--upstream",
                        up_url,
                        "--log-level",
                        "warning",
                    ],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=(tmp / f"proxy-{port}.log").open("wb"),
                )
            )
        urls = [f"http://127.0.0.1:{p}" for p in ports]
        for u in urls:
            await wait_ready(u + "/readyz", procs)

        store = RedisStore(redis_url)
        before = await store.client.info("commandstats")
        statuses: list[int] = []
        flagged: list[int] = []
        t0 = time.perf_counter()
        conn = aiohttp.TCPConnector(limit=args.clients)
        async with aiohttp.ClientSession(connector=conn) as s:
            await asyncio.gather(*(client(s, urls, i, statuses, flagged) for i in range(args.clients)))
            drained: list[int] = []
            await client(s, urls, 0, drained, flagged)  # sequential: take whatever settlement gave back
            statuses += drained
        elapsed = time.perf_counter() - t0
        after = await store.client.info("commandstats")
        calls = {k: after[k]["calls"] - before.get(k, {"calls": 0})["calls"] for k in after}
        calls.pop("cmdstat_info", None)
        admitted = statuses.count(200)
        refused = statuses.count(429)
        day, _ = await store.spent(team, Subject("team", team, Quota()), Periods.at())
        evalsha = calls.get("cmdstat_evalsha", 0)
        requests = len(statuses)

        baseline = await check_then_add(
            redis_url, args.clients, per_request, budget_nano, args.upstream_delay_ms / 1000
        )
        for p in procs:  # measure the check alone, without the replicas competing for the CPU
            p.terminate()
        lat_redis = await check_latency(store, args.latency_samples, prices, "lat-" + uuid.uuid4().hex[:6])
        lat_mem = await check_latency(MemoryStore(), args.latency_samples, prices, "lat-mem")
        await store.close()
        result = {
            "replicas": args.replicas,
            "clients": args.clients,
            "usage": args.usage,
            "fail_mode": args.fail_mode,
            "requests": requests,
            "admitted": admitted,
            "refused_429": refused,
            "other_status": requests - admitted - refused,
            "fail_open_admissions": len(flagged),
            "allowed": args.allowed,
            "reservation_usd": per_request / NANO,
            "budget_usd": budget_usd,
            "reserved_usd": round(admitted * per_request / NANO, 9),
            "spent_usd": day.nano_usd / NANO,
            "overspend_usd": max(0, day.nano_usd - budget_nano) / NANO,
            "underuse": round((budget_nano - day.nano_usd) / per_request, 3),
            "redis_commands": {k.removeprefix("cmdstat_"): v for k, v in calls.items() if v},
            # EVALSHA calls minus one settle per admitted request, minus the one retry per
            # script and process after NOSCRIPT (a fresh Redis): what each admission cost.
            "admission_round_trips_per_request": round(
                (evalsha - admitted - calls.get("cmdstat_script|load", 0)) / requests, 3
            ),
            "elapsed_s": round(elapsed, 2),
            "added_p50_ms": lat_redis["check_p50_ms"],  # the limits check (estimate + admission), Redis
            "limits_check_redis": lat_redis,
            "limits_check_memory": lat_mem,
            "check_then_add_baseline": baseline,
        }
        print(json.dumps(result))
        if args.keep_logs:
            shutil.copytree(tmp, args.keep_logs, dirs_exist_ok=True, ignore=shutil.ignore_patterns("rules"))
        ok = result["overspend_usd"] == 0 and result["underuse"] < 1 and result["other_status"] == 0
        if args.usage == "worst":
            ok = ok and admitted == args.allowed
        return 0 if ok else 1
    finally:
        stop_all(procs)
        await fake.close()
        redis.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
