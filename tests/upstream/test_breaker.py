from __future__ import annotations

from proxy.upstream.breaker import BreakerState, CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_opens_after_threshold_and_half_opens_with_one_probe() -> None:
    clock = Clock()
    b = CircuitBreaker(failure_threshold=2, reset_after_s=5, clock=clock)
    b.failure()
    assert b.allow()
    b.failure()
    assert b.state is BreakerState.OPEN and not b.allow()
    clock.now = 5.0
    assert b.state is BreakerState.HALF_OPEN
    assert b.allow()  # the probe
    assert not b.allow()  # only one at a time
    b.failure()  # probe failed: open again for a full period
    assert b.state is BreakerState.OPEN and not b.allow()
    clock.now = 10.0
    assert b.allow()
    b.success()
    assert b.state is BreakerState.CLOSED and b.allow()


def test_success_resets_failure_count() -> None:
    b = CircuitBreaker(failure_threshold=3, reset_after_s=1, clock=Clock())
    b.failure()
    b.failure()
    b.success()
    b.failure()
    b.failure()
    assert b.state is BreakerState.CLOSED
