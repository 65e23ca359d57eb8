"""The request map and what links a request to an approved answer."""

from __future__ import annotations

from proxy.context import Principal, RequestContext, Route
from proxy.feedback.records import RequestLog, RequestRecord, RetryDetector, approved_id
from proxy.verdicts import Hit, Substitute


def ctx() -> RequestContext:
    return RequestContext("a" * 32, Route.CHAT, Principal("dev", "dev"), {"model": "m", "messages": []}, b"")


def test_approved_answer_id_from_the_substitute_verdict() -> None:
    c = ctx()
    assert approved_id(c) is None
    c.record(
        Substitute("approved_response", "Our hours are 9-5.", (Hit("approved.hours"),)), enforced=True, elapsed_ms=1
    )
    assert approved_id(c) == "approved.hours"
    c.response_headers["x-guardrail-approved-id"] = "approved.hours-v2"
    assert approved_id(c) == "approved.hours-v2"


def test_monitored_substitute_did_not_serve_the_answer() -> None:
    c = ctx()
    c.record(Substitute("approved_response", "text", (Hit("approved.x"),)), enforced=False, elapsed_ms=1)
    assert approved_id(c) is None


def test_request_log_is_bounded_oldest_first() -> None:
    log = RequestLog(capacity=2)
    for rid in ("a", "b", "c"):
        log.add(RequestRecord(rid, "dev", "m", "chat.completions", None, 200))
    assert log.get("a") is None and log.get("b") is not None and len(log) == 2


def test_retry_needs_an_answered_earlier_request() -> None:
    r = RetryDetector(window_s=10, capacity=10)
    fp = r.fingerprint("dev", "hello")
    assert r.seen(fp, "r1", answered=False, now=0.0) is None  # an error is not an answer to retry
    assert r.seen(fp, "r2", answered=True, now=1.0) is None
    assert r.seen(fp, "r3", answered=True, now=5.0) == "r2"
    assert r.seen(fp, "r4", answered=True, now=16.0) is None  # r3 was 11 s ago
    assert r.fingerprint("dev", "hello") != r.fingerprint("other", "hello")
