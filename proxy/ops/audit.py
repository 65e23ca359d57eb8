"""The audit trail: one hash-chained JSONL record per request, written off the event loop.

Off unless ``GUARDRAIL_AUDIT_PATH`` names a file. Settings (environment):

- ``GUARDRAIL_AUDIT_PATH``: the JSONL file (appended to; the chain continues across restarts).
- ``GUARDRAIL_AUDIT_SAMPLE_RATE``: 0..1 (default 0.01), the share of records that carry
  the *redacted* input/output text for review. Chosen from the request id, so stable.
- ``GUARDRAIL_AUDIT_QUEUE``: records waiting to be written (default 10000). When full a
  record is dropped and counted (``guardrail_audit_dropped_total``); a request never waits.
- ``GUARDRAIL_AUDIT_HMAC_KEY``: key for the input digest (default: random per process, so
  digests compare only within one process). A plain hash of a short prompt could be
  brute-forced back to the PII in it; a keyed one cannot.

What a record holds: ids, principal (key id and team, never the key), models, status,
every verdict with guard, action, rule ids, scores and layer (never a hit's ``detail``,
which may quote the text), usage, timings, and input/output sizes plus the keyed digest.
Text is recorded only when sampled *and* known to be redacted: the prompt texts of the
PII guard's enforced ``Rewrite`` body (or ``ctx.extras["pii.redacted_input"]``: str or
list of str, and ``ctx.extras["pii.redacted_output"]``: str, if a guard sets them); raw
prompt or answer text never is.

Chain: each record has ``prev`` (the previous record's ``hash``, ``GENESIS`` for the
first) and ``hash`` = sha256 over the canonical JSON of the record without ``hash``
(sorted keys, no spaces, UTF-8). ``guardrail-proxy audit verify FILE`` checks it
(``proxy.ops.audit_cli.verify``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import os
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge

from proxy.context import RequestContext
from proxy.handlers.explain import decision_headers
from proxy.messages import prompt_parts
from proxy.ops import scope as ops_scope
from proxy.ops.metrics import action_of, registry
from proxy.runtime import RUNTIME
from proxy.verdicts import Rewrite

log = logging.getLogger("guardrail.audit")

GENESIS = "0" * 64
REDACTED_INPUT = "pii.redacted_input"
REDACTED_OUTPUT = "pii.redacted_output"
PII_GUARD = "pii"  # the guard whose Rewrite body is known to be redacted
BATCH = 256
_STOP: dict[str, Any] = {"stop": True}  # sentinel, compared by identity


@dataclass(frozen=True)
class AuditConfig:
    path: Path
    sample_rate: float = 0.01
    queue_size: int = 10_000
    hmac_key: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> AuditConfig | None:
        env = dict(os.environ) if env is None else env
        path = env.get("GUARDRAIL_AUDIT_PATH", "").strip()
        if not path:
            return None
        rate = min(1.0, max(0.0, float(env.get("GUARDRAIL_AUDIT_SAMPLE_RATE", "0.01"))))
        size = max(1, int(env.get("GUARDRAIL_AUDIT_QUEUE", "10000")))
        key = env.get("GUARDRAIL_AUDIT_HMAC_KEY")
        if key:
            return cls(Path(path), rate, size, key.encode())
        return cls(Path(path), rate, size)


def _now_iso() -> str:
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"


def canonical(record: dict[str, Any]) -> bytes:
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def seal(record: dict[str, Any], prev: str) -> dict[str, Any]:
    """Chain ``record`` after ``prev``: sets ``prev`` and ``hash`` (sha256 of the rest)."""
    record = {k: v for k, v in record.items() if k != "hash"}
    record["prev"] = prev
    record["hash"] = hashlib.sha256(canonical(record)).hexdigest()
    return record


def sampled(request_id: str, rate: float) -> bool:
    if rate <= 0:
        return False
    if rate >= 1:
        return True
    bucket = int.from_bytes(hashlib.sha256(request_id.encode()).digest()[:8], "big")
    return bucket / 2**64 < rate


def _texts(value: Any) -> list[str] | None:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return list(value)
    return None


def _pii_rewritten(ctx: RequestContext) -> list[str] | None:
    """The prompt texts as the PII guard rewrote them (its enforced ``Rewrite`` body), if it did.

    Only then is text known to be redacted; a request the PII guard left alone (or that
    it never saw) is recorded by size and digest only.
    """
    for d in ctx.decisions:
        v = d.verdict
        if v.guard == PII_GUARD and d.enforced and isinstance(v, Rewrite) and v.body is not None:
            return [p.text for p in prompt_parts(ctx.route, v.body)]
    return None


def build_record(ctx: RequestContext, config: AuditConfig) -> dict[str, Any]:
    """Everything worth keeping about a finished request, with no raw text in it."""
    parts = prompt_parts(ctx.route, ctx.body)
    take_text = sampled(ctx.request_id, config.sample_rate)
    inp: dict[str, Any] = {
        "bytes": len(ctx.raw),
        "parts": len(parts),
        "chars": sum(len(p.text) for p in parts),
        "hmac_sha256": hmac.new(config.hmac_key, ctx.raw, hashlib.sha256).hexdigest(),
    }
    out: dict[str, Any] = {"chars": ctx.output_chars}
    red_in = _texts(ctx.extras.get(REDACTED_INPUT)) if take_text else None
    if take_text and red_in is None:
        red_in = _pii_rewritten(ctx)
    red_out = _texts(ctx.extras.get(REDACTED_OUTPUT))
    if take_text and red_in is not None:
        inp["redacted"] = red_in
    if take_text and red_out is not None:
        out["redacted"] = "".join(red_out)
    verdicts = []
    for d in ctx.decisions:
        v = d.verdict
        entry: dict[str, Any] = {
            "guard": v.guard,
            "stage": d.stage,
            "action": action_of(v),
            "enforced": d.enforced,
            "elapsed_ms": round(d.elapsed_ms, 3),
            "hits": [
                {"rule_id": h.rule_id, "score": round(float(h.score), 6), "layer": h.layer, "surface": h.surface}
                for h in v.hits
            ],
        }
        code = getattr(v, "code", None)
        if isinstance(code, str):
            entry["code"] = code
        verdicts.append(entry)
    usage = (
        None
        if ctx.usage is None
        else {"input_tokens": ctx.usage.prompt_tokens, "output_tokens": ctx.usage.completion_tokens}
    )
    return {
        "v": 1,
        "ts": _now_iso(),
        "request_id": ctx.request_id,
        "route": ctx.route.value,
        "key_id": ctx.principal.key_id,
        "team": ctx.principal.team,
        "model": ctx.requested_model or ctx.model,
        "upstream_model": ctx.upstream_model,
        "stream": ctx.stream,
        "status": ctx.status,
        "error_code": ctx.error_code,
        "decision": decision_headers(ctx)["x-guardrail-decision"],
        "verdicts": verdicts,
        "usage": usage,
        "timing_ms": {
            "total": round((time.perf_counter() - ctx.started) * 1000, 3),
            "upstream": round(ctx.upstream_ms, 3),
            "ttft": None if ctx.ttft_ms is None else round(ctx.ttft_ms, 3),
        },
        "sampled": take_text,
        "input": inp,
        "output": out,
    }


def refused_record(summary: dict[str, Any]) -> dict[str, Any]:
    """A request refused before the pipeline (bad key, bad JSON): no principal, no verdicts."""
    return {
        "v": 1,
        "ts": _now_iso(),
        **summary,
        "key_id": None,
        "team": None,
        "decision": "refused",
        "verdicts": [],
    }


def last_hash(path: Path) -> str:
    """The ``hash`` of the last parseable record in ``path`` (GENESIS for a new file)."""
    if not path.exists() or path.stat().st_size == 0:
        return GENESIS
    with path.open("rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        chunk = 1 << 16
        data = b""
        while size > 0:
            step = min(chunk, size)
            size -= step
            f.seek(size)
            data = f.read(step) + data
            lines = [ln for ln in data.splitlines() if ln.strip()]
            if len(lines) >= 2 or size == 0:
                for line in reversed(lines):
                    with contextlib.suppress(ValueError, AttributeError):
                        found = json.loads(line).get("hash")
                        if isinstance(found, str):
                            return found
                if size == 0:
                    break
    log.warning("audit file has no readable last record; chain restarts", extra={"path": str(path)})
    return GENESIS


class AuditMetrics:
    def __init__(self, reg: CollectorRegistry) -> None:
        self.records = Counter("guardrail_audit_records", "Audit records written.", registry=reg)
        self.dropped = Counter("guardrail_audit_dropped", "Audit records dropped (queue full).", registry=reg)
        self.errors = Counter("guardrail_audit_write_errors", "Audit batches that failed to write.", registry=reg)
        self.queue = Gauge("guardrail_audit_queue_depth", "Audit records waiting to be written.", registry=reg)


class AuditWriter:
    """A bounded queue drained by one task; file appends run in a worker thread."""

    def __init__(self, config: AuditConfig, metrics: AuditMetrics) -> None:
        self.config = config
        self.metrics = metrics
        self.prev = GENESIS
        self.queue: asyncio.Queue[dict[str, Any]] | None = None
        self.closed = False

    def submit(self, record: dict[str, Any]) -> bool:
        if self.queue is None or self.closed:
            self.metrics.dropped.inc()
            return False
        try:
            self.queue.put_nowait(record)
        except asyncio.QueueFull:
            self.metrics.dropped.inc()
            return False
        self.metrics.queue.set(self.queue.qsize())
        return True

    def _append(self, batch: list[dict[str, Any]]) -> None:
        lines = []
        prev = self.prev
        for rec in batch:
            sealed = seal(rec, prev)
            prev = sealed["hash"]
            lines.append(canonical(sealed) + b"\n")
        with self.config.path.open("ab") as f:
            f.write(b"".join(lines))
            f.flush()
        self.prev = prev  # only once the lines are on disk

    async def start(self) -> None:
        self.config.path.parent.mkdir(parents=True, exist_ok=True)
        self.prev = await asyncio.to_thread(last_hash, self.config.path)
        self.queue = asyncio.Queue(self.config.queue_size)
        self.closed = False

    async def _write(self, batch: list[dict[str, Any]]) -> None:
        try:
            await asyncio.to_thread(self._append, batch)
            self.metrics.records.inc(len(batch))
        except OSError as exc:
            self.metrics.errors.inc()
            log.error("audit write failed", extra={"error_type": type(exc).__name__, "records": len(batch)})

    async def run(self) -> None:
        """Write batches in order until ``stop``; one writer, so the chain never forks."""
        queue = self.queue
        assert queue is not None
        while True:
            batch = [await queue.get()]
            while len(batch) < BATCH and not queue.empty():
                batch.append(queue.get_nowait())
            self.metrics.queue.set(queue.qsize())
            records = [r for r in batch if r is not _STOP]
            try:
                if records:
                    await self._write(records)
            finally:
                for _ in batch:
                    queue.task_done()
            if len(records) != len(batch):
                return

    async def drained(self) -> None:
        """Wait until every submitted record is written (tests, benchmarks)."""
        if self.queue is not None:
            await self.queue.join()

    async def stop(self) -> None:
        """Refuse new records, write the queued ones, end ``run``."""
        self.closed = True
        if self.queue is not None:
            await self.queue.put(_STOP)


class AuditObserver:
    def __init__(self, writer: AuditWriter) -> None:
        self.writer = writer

    def request_finished(self, ctx: RequestContext) -> None:
        self.writer.submit(build_record(ctx, self.writer.config))


AUDIT = web.AppKey("ops_audit", AuditWriter)


def install(app: web.Application, config: AuditConfig | None = None) -> AuditWriter | None:
    """Idempotent; does nothing unless ``config`` is given or ``GUARDRAIL_AUDIT_PATH`` is set."""
    if AUDIT in app:
        return app[AUDIT]
    config = config or AuditConfig.from_env()
    if config is None:
        return None
    writer = AuditWriter(config, AuditMetrics(registry(app)))
    app[AUDIT] = writer
    app[RUNTIME].observers.append(AuditObserver(writer))

    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        await writer.start()
        task = asyncio.create_task(writer.run(), name="audit-writer")
        yield
        await writer.stop()
        try:
            await asyncio.wait_for(task, timeout=10)
        except TimeoutError:
            log.error("audit writer did not finish in time; queued records lost")

    def refused(request: web.Request, scope: ops_scope.Scope, status: int) -> None:
        if scope.refused is not None:
            writer.submit(refused_record(scope.refused))

    ops_scope.install(app).end.append(refused)
    app.cleanup_ctx.append(lifetime)
    log.info("audit trail on", extra={"path": str(config.path), "sample_rate": config.sample_rate})
    return writer
