"""The shadow worker: a bounded queue, a few tasks owned by the app, its own HTTP session.

The observer enqueues finished tickets without waiting (queue full → dropped and
counted). Workers send each request to its candidate with the candidate's own timeout,
draw on the separate shadow budget, compare the two answers and append one redacted
JSONL record. Nothing here can delay, change or fail the client's request.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Any

import aiohttp
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from proxy.context import RequestContext, Route
from proxy.handlers.whole import sites
from proxy.shadow.budget import BudgetBook
from proxy.shadow.guard import EXTRAS_KEY, ShadowTicket
from proxy.shadow.pricing import Price
from proxy.shadow.record import Answer, Job, compare_and_record
from proxy.streaming.chunks import usage_from

log = logging.getLogger("guardrail.shadow")

PATHS = {Route.CHAT: "/chat/completions", Route.COMPLETIONS: "/completions", Route.RESPONSES: "/responses"}


class ShadowMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.calls = Counter(
            "guardrail_shadow_calls",
            "Shadow calls to candidate models by outcome (ok, error, timeout, budget_exhausted, dropped).",
            ["candidate", "outcome"],
            registry=registry,
        )
        self.similarity = Histogram(
            "guardrail_shadow_similarity",
            "Similarity between the main and the candidate answer (0..1).",
            ["candidate"],
            buckets=(0.2, 0.4, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0),
            registry=registry,
        )
        self.queue = Gauge("guardrail_shadow_queue_depth", "Shadow jobs waiting.", registry=registry)


class ShadowWorker:
    def __init__(
        self,
        *,
        queue_size: int,
        concurrency: int,
        default_url: str,
        default_key: str | None,
        services: Any,
        prices: dict[str, Price],
        registry: CollectorRegistry,
        response_slots: Any = None,
    ) -> None:
        self.queue: asyncio.Queue[Job] = asyncio.Queue(maxsize=queue_size)
        self.concurrency = concurrency
        self.default_url = default_url.rstrip("/")
        self.default_key = default_key
        self.services = services
        self.prices = prices
        self.response_slots = response_slots  # callable → current ruleset's response slots
        self.metrics = ShadowMetrics(registry)
        self.budget = BudgetBook()
        self.dropped = 0
        self.done = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._session: aiohttp.ClientSession | None = None

    # -- lifetime (app.cleanup_ctx) -------------------------------------------------------
    async def start(self) -> None:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=max(4, self.concurrency * 2)),
            skip_auto_headers=("User-Agent",),
        )
        self._tasks = [asyncio.create_task(self._run(), name=f"shadow-{i}") for i in range(self.concurrency)]

    async def stop(self) -> None:
        left = self.queue.qsize()
        if left:  # shutting down: queued comparisons are given up, and counted
            self.dropped += left
            log.info("shadow jobs dropped at shutdown", extra={"count": left})
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self._session is not None:
            await self._session.close()

    async def drain(self) -> None:
        """Wait until every queued job is done (tests, graceful shutdown)."""
        await self.queue.join()

    # -- observer -------------------------------------------------------------------------
    def request_finished(self, ctx: RequestContext) -> None:
        ticket = ctx.extras.get(EXTRAS_KEY)
        if not isinstance(ticket, ShadowTicket) or ctx.status != 200 or ctx.error_code:
            return
        job = Job.from_request(ctx, ticket)
        try:
            self.queue.put_nowait(job)
        except asyncio.QueueFull:
            self.dropped += 1
            self.metrics.calls.labels(ticket.candidate.id, "dropped").inc()
        self.metrics.queue.set(self.queue.qsize())

    # -- work -----------------------------------------------------------------------------
    async def _run(self) -> None:
        while True:
            job = await self.queue.get()
            try:
                await self._one(job)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("shadow job failed", extra={"request_id": job.request_id})
            finally:
                self.done += 1
                self.queue.task_done()
                self.metrics.queue.set(self.queue.qsize())

    async def _one(self, job: Job) -> None:
        cand = job.ticket.candidate
        cap = job.ticket.config.budget
        est_tokens = max(1, job.main_usage.total_tokens if job.main_usage else len(job.main_text) // 2)
        est_usd = job.cost(self.prices, cand.model, job.main_usage) or 0.0
        if not self.budget.reserve(cap, est_tokens, est_usd):
            self.metrics.calls.labels(cand.id, "budget_exhausted").inc()
            return
        answer: Answer | None = None
        error: str | None = None
        try:
            answer = await self._call(job)
        except TimeoutError:
            error = "timeout"
        except (aiohttp.ClientError, ValueError) as exc:
            error = f"error: {type(exc).__name__}"
        used = answer.usage if answer else None
        usd = job.cost(self.prices, cand.model, used) if used else None
        self.budget.settle(est_tokens, est_usd, used.total_tokens if used else 0, usd or 0.0)
        outcome = "ok" if answer else ("timeout" if error == "timeout" else "error")
        self.metrics.calls.labels(cand.id, outcome).inc()
        slots = self.response_slots() if self.response_slots else ()
        record = await compare_and_record(job, answer, error, self.services, self.prices, slots)
        sim = record["compare"]["similarity"]
        if sim is not None:
            self.metrics.similarity.labels(cand.id).observe(sim)

    async def _call(self, job: Job) -> Answer:
        assert self._session is not None, "ShadowWorker.start() was not awaited"
        cand = job.ticket.candidate
        body = {k: v for k, v in job.ticket.body.items() if k not in ("stream", "stream_options")}
        body["model"] = cand.model
        url = (cand.upstream_url or self.default_url).rstrip("/") + PATHS[job.route]
        key = os.environ.get(cand.api_key_env) if cand.api_key_env else self.default_key
        headers = {"Content-Type": "application/json", "Accept-Encoding": "identity"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        t0 = time.perf_counter()
        async with (
            asyncio.timeout(cand.timeout_s),
            self._session.post(url, json=body, headers=headers) as resp,
        ):
            if resp.status >= 400:
                raise aiohttp.ClientResponseError(resp.request_info, (), status=resp.status)
            payload = await resp.json(content_type=None)
        latency = (time.perf_counter() - t0) * 1000
        if not isinstance(payload, dict):
            raise ValueError("candidate answered non-object JSON")
        text = "\n".join(s.text for s in sites(job.route, payload) if s.text)
        return Answer(text, usage_from(payload), latency)
