"""What feedback links to: a bounded, in-memory map of recent requests, and retry detection.

An observer fills the map as requests finish (request id → key, model, route, the
approved answer that served it, if any). The same observer notices a key sending the
same last user message again within ``window_s`` of an answered request, and counts it
as an implicit ``retried`` signal against that earlier answer.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter

from proxy.context import RequestContext, Route
from proxy.messages import last_user_text
from proxy.verdicts import Substitute

log = logging.getLogger("guardrail.feedback")

MAX_EVENTS_PER_REQUEST = 32


@dataclass(slots=True)
class RequestRecord:
    request_id: str
    key_id: str
    model: str
    route: str
    approved_id: str | None
    status: int
    events: list[str] = field(default_factory=list)  # event names only: never the user's text

    @property
    def approved_label(self) -> str:
        return self.approved_id or "none"


def approved_id(ctx: RequestContext) -> str | None:
    """The pre-approved answer that served this request: its header, else the Substitute's rule id."""
    for name, value in ctx.response_headers.items():
        if "approved" in name.lower():
            return value
    for d in ctx.decisions:
        v = d.verdict
        if d.enforced and isinstance(v, Substitute) and "approved" in v.guard and v.hits:
            return v.hits[0].rule_id
    return None


class FeedbackMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.events = Counter(
            "guardrail_feedback_events",
            "Feedback on answers: explicit (POST /v1/feedback) and implicit (retries the proxy saw).",
            ["model", "route", "approved_id", "event", "source"],
            registry=registry,
        )

    def count(self, rec: RequestRecord, event: str, source: str) -> None:
        self.events.labels(rec.model, rec.route, rec.approved_label, event, source).inc()


class RequestLog:
    """request id → record, oldest forgotten first once ``capacity`` is reached."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._items: OrderedDict[str, RequestRecord] = OrderedDict()

    def add(self, rec: RequestRecord) -> None:
        self._items[rec.request_id] = rec
        self._items.move_to_end(rec.request_id)
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)

    def get(self, request_id: str) -> RequestRecord | None:
        return self._items.get(request_id)

    def __len__(self) -> int:
        return len(self._items)


def add_event(rec: RequestRecord, event: str) -> None:
    if len(rec.events) < MAX_EVENTS_PER_REQUEST:
        rec.events.append(event)


class RetryDetector:
    """Same key + same last user message within ``window_s`` of an answered request → a retry."""

    def __init__(self, window_s: float, capacity: int) -> None:
        self.window_s = window_s
        self.capacity = capacity
        self._seen: OrderedDict[str, tuple[float, str]] = OrderedDict()

    @staticmethod
    def fingerprint(key_id: str, text: str) -> str:
        return hashlib.sha256(f"{key_id}\0{text.strip()}".encode()).hexdigest()

    def seen(self, fp: str, request_id: str, answered: bool, now: float) -> str | None:
        """The earlier request this one retries, if any; remembers this one when it got an answer."""
        earlier = self._seen.get(fp)
        retried = earlier[1] if earlier is not None and now - earlier[0] <= self.window_s else None
        if answered:
            self._seen[fp] = (now, request_id)
            self._seen.move_to_end(fp)
            while len(self._seen) > self.capacity:
                self._seen.popitem(last=False)
        return retried


class FeedbackObserver:
    """Fills the request log and counts implicit retries; cheap and synchronous."""

    def __init__(self, requests: RequestLog, retries: RetryDetector, metrics: FeedbackMetrics) -> None:
        self.requests = requests
        self.retries = retries
        self.metrics = metrics
        self.implicit_retries = 0

    def request_finished(self, ctx: RequestContext) -> None:
        if ctx.route is Route.EMBEDDINGS:
            return
        rec = RequestRecord(
            request_id=ctx.request_id,
            key_id=ctx.principal.key_id,
            model=ctx.upstream_model or ctx.model,
            route=ctx.route.value,
            approved_id=approved_id(ctx),
            status=ctx.status,
        )
        self.requests.add(rec)
        text = last_user_text(ctx.route, ctx.body)
        if not text:
            return
        answered = ctx.status == 200 and ctx.error_code is None
        fp = self.retries.fingerprint(rec.key_id, text)
        earlier_id = self.retries.seen(fp, rec.request_id, answered, time.monotonic())
        earlier = self.requests.get(earlier_id) if earlier_id else None
        if earlier is not None:
            self.implicit_retries += 1
            add_event(earlier, "retried")
            self.metrics.count(earlier, "retried", "implicit")
            log.info(
                "feedback",
                extra={
                    "request_id": earlier.request_id,
                    "event": "retried",
                    "source": "implicit",
                    "retry_request_id": rec.request_id,
                    "model": earlier.model,
                    "route": earlier.route,
                },
            )
