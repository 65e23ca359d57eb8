"""Implicit feedback: ``POST /v1/feedback`` and retries the proxy notices by itself.

``install(app)`` adds the route and the observer that remembers recent requests.
The request map lives in this process (a bounded LRU): with several replicas, a
feedback call must reach the replica that served the request (sticky sessions), or
it gets a 404.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from proxy.feedback.api import handler
from proxy.feedback.metrics import metrics_registry
from proxy.feedback.records import FeedbackMetrics, FeedbackObserver, RequestLog, RetryDetector
from proxy.runtime import RUNTIME


@dataclass(frozen=True, slots=True)
class Feedback:
    requests: RequestLog
    retries: RetryDetector
    metrics: FeedbackMetrics
    observer: FeedbackObserver


FEEDBACK = web.AppKey("feedback", Feedback)


def install(app: web.Application, *, retry_window_s: float = 60.0, capacity: int = 50_000) -> None:
    if FEEDBACK in app:  # idempotent
        return
    requests = RequestLog(capacity)
    retries = RetryDetector(retry_window_s, capacity)
    metrics = FeedbackMetrics(metrics_registry(app))
    observer = FeedbackObserver(requests, retries, metrics)
    app[FEEDBACK] = Feedback(requests, retries, metrics, observer)
    app[RUNTIME].observers.append(observer)
    app.router.add_post("/v1/feedback", handler(requests, metrics))


__all__ = ["FEEDBACK", "Feedback", "install"]
