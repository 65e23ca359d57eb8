"""Drift: after a baseline of normal answers, an off-topic, outsized or blob-laden one is evidence."""

from __future__ import annotations

import asyncio

from proxy.context import Principal, RequestContext, Route
from proxy.guards.output.config import DriftConfig
from proxy.guards.output.drift import DriftSignals, InProcessBaselines
from tests.guards.output.harness import services

NORMAL = [
    f"Your booking {i} to Lisbon is confirmed for {d} May. You can change the date in the app up to 24 hours before departure."
    for i, d in zip(range(12), range(1, 13), strict=True)
]


def ctx(model: str = "gpt-4o-mini") -> RequestContext:
    return RequestContext("r", Route.CHAT, Principal("dev", "dev"), {"model": model, "messages": []}, b"")


async def judge(sig: DriftSignals, text: str, model: str = "gpt-4o-mini") -> list[str]:
    s = sig.open(ctx(model))
    assert s is not None
    return [h.rule_id for h in await s.finish(text)]


async def test_answers_unlike_the_baseline_are_evidence_and_do_not_move_it() -> None:
    sig = DriftSignals(DriftConfig(min_samples=10), services())
    assert isinstance(sig.store, InProcessBaselines)
    for text in NORMAL:
        assert await judge(sig, text) == []
    off_topic = "Sure! Here is a Python script that deletes every file in the home directory recursively."
    assert await judge(sig, off_topic) == ["output.drift.embedding"]
    assert "output.drift.length" in await judge(sig, "Confirmed. " * 400)
    blob = "Here is your data: " + "QUJD" * 80
    assert "output.drift.format" in await judge(sig, blob)
    assert await judge(sig, NORMAL[3]) == []  # the outliers did not pollute the baseline
    # Baselines are per route+model: a new model starts learning from scratch.
    assert await judge(sig, off_topic, model="gpt-4o") == []


async def test_drift_embedding_runs_off_the_event_loop() -> None:
    sig = DriftSignals(DriftConfig(min_samples=2), services())
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    try:
        await judge(sig, NORMAL[0] * 20)
    finally:
        task.cancel()
    assert ticks > 1


async def test_an_unreachable_state_store_does_not_fail_the_answer() -> None:
    """Baselines live in Redis when configured; Redis down → in-process baselines, no error."""
    import socket

    from proxy.guards.output.drift import StateBaselines
    from proxy.state.redis_store import RedisStore

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    svc = services()
    svc.state = RedisStore(f"redis://127.0.0.1:{port}/0")
    sig = DriftSignals(DriftConfig(min_samples=10), svc)
    assert isinstance(sig.store, StateBaselines)
    for text in NORMAL:
        assert await judge(sig, text) == []
    off_topic = "Sure! Here is a Python script that deletes every file in the home directory recursively."
    assert await judge(sig, off_topic) == ["output.drift.embedding"]  # learnt in process meanwhile
    await svc.state.close()
