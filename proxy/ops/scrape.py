"""Metrics read at scrape time from state that lives elsewhere: the upstream circuit
breaker, rule reload outcomes, state-store errors and the injection detector's counts.

``ScrapeCollector`` is registered on each app's registry by ``proxy.ops.metrics.install``.
The state-store and injection counts are process-wide (the store lives in Services, the
detector in the CPU pool), so two apps in one process export the same totals.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from proxy.guards.injection import stats as injection_stats
from proxy.runtime import Runtime

# Process-wide state-store error counts (the store lives in Services, shared across apps).
_state_lock = threading.Lock()
_state_errors: dict[tuple[str, str], int] = {}


def record_state_error(backend: str, operation: str) -> None:
    """Count a failed state-store call (e.g. ``record_state_error("redis", "admit")``).

    Safe from any thread; exported as ``guardrail_state_store_errors_total``.
    """
    with _state_lock:
        _state_errors[(backend, operation)] = _state_errors.get((backend, operation), 0) + 1


class ScrapeCollector(Collector):
    """Read at scrape time: breaker state, rule reload outcomes, state-store errors, the
    injection detector's counts."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    def collect(self) -> Iterable[Metric]:
        breaker = GaugeMetricFamily(
            "guardrail_upstream_breaker_state", "Upstream circuit breaker: 0 closed, 1 half-open, 2 open."
        )
        breaker.add_metric([], float(self.rt.upstream.breaker.state.value))
        yield breaker
        status = self.rt.rules.status
        reloads = CounterMetricFamily("guardrail_rules_reloads", "Rule reloads by result.", labels=["result"])
        reloads.add_metric(["success"], status.ok)
        reloads.add_metric(["rejected"], status.rejected)
        yield reloads
        ok = GaugeMetricFamily(
            "guardrail_rules_last_reload_success", "1 when the last reload (or the initial load) succeeded."
        )
        ok.add_metric([], 0.0 if status.last_error else 1.0)
        yield ok
        info = GaugeMetricFamily("guardrail_rules_info", "The ruleset serving now.", labels=["version"])
        current = self.rt.rules.current
        if current is not None:
            info.add_metric([str(current.version)[:16]], 1.0)
        yield info
        errors = CounterMetricFamily(
            "guardrail_state_store_errors", "Failed state-store calls.", labels=["backend", "operation"]
        )
        with _state_lock:
            snapshot = dict(_state_errors)
        for (backend, operation), n in sorted(snapshot.items()):
            errors.add_metric([backend, operation], n)
        yield errors
        yield from _injection_metrics()


def _injection_metrics() -> Iterator[Metric]:
    counts = injection_stats.snapshot()
    texts = CounterMetricFamily(
        "guardrail_injection_texts",
        "Texts the injection detector scanned (layer=all), and those its semantic layer read (layer=semantic), "
        "by side (request: prompts; response: answers, for the injection-echo signal).",
        labels=["side", "layer"],
    )
    windows = CounterMetricFamily(
        "guardrail_injection_semantic_windows",
        "Windows the injection detector's semantic layer read (embedded, or from its window cache).",
        labels=["side"],
    )
    for side in injection_stats.SIDES:
        texts.add_metric([side, "all"], counts[(side, "texts")])
        texts.add_metric([side, "semantic"], counts[(side, "semantic_texts")])
        windows.add_metric([side], counts[(side, "semantic_windows")])
    yield texts
    yield windows
