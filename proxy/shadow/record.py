"""One shadow comparison: the job taken from a finished request, and the JSONL record written.

Records never hold raw PII: texts are the ones forwarded upstream (pseudonymised when a
PII guard ran) and pass ``compare.scrub`` before they are written.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from proxy.context import Principal, RequestContext, Route, Usage
from proxy.messages import last_user_text
from proxy.shadow.compare import scrub, similarity
from proxy.shadow.guard import ShadowTicket
from proxy.shadow.pricing import Price, cost
from proxy.verdicts import Allow


@dataclass(frozen=True, slots=True)
class Answer:
    text: str
    usage: Usage | None
    latency_ms: float


@dataclass(frozen=True, slots=True)
class Job:
    request_id: str
    route: Route
    key_id: str
    team: str
    model: str  # the pinned model that answered the client
    main_text: str
    main_usage: Usage | None
    main_latency_ms: float
    main_anomalies: tuple[str, ...]
    pseudonymised: bool  # a PII guard redacted the forwarded request
    ticket: ShadowTicket
    ts: float

    @classmethod
    def from_request(cls, ctx: RequestContext, ticket: ShadowTicket) -> Job:
        watched = set(ticket.candidate.anomaly_guards)
        anomalies = tuple(
            h.rule_id
            for d in ctx.decisions
            if d.stage == "response" and d.verdict.guard in watched and not isinstance(d.verdict, Allow)
            for h in d.verdict.hits
        )
        return cls(
            request_id=ctx.request_id,
            route=ctx.route,
            key_id=ctx.principal.key_id,
            team=ctx.principal.team,
            model=ctx.upstream_model or ctx.model,
            main_text=ticket.main_text,
            main_usage=ctx.usage,
            main_latency_ms=round(ctx.upstream_ms, 2),
            main_anomalies=anomalies,
            pseudonymised=any("pii" in k.lower() for k in ctx.extras),
            ticket=ticket,
            ts=time.time(),
        )

    def cost(self, prices: dict[str, Price], model: str, usage: Usage | None) -> float | None:
        if usage is None:
            return None
        return cost(prices, model, usage.prompt_tokens, usage.completion_tokens)


def _side(model: str, text: str, usage: Usage | None, latency: float | None, usd: float | None) -> dict[str, Any]:
    return {
        "model": model,
        "text": scrub(text),
        "chars": len(text),
        "latency_ms": None if latency is None else round(latency, 2),
        "prompt_tokens": usage.prompt_tokens if usage else None,
        "completion_tokens": usage.completion_tokens if usage else None,
        "cost_usd": usd,
    }


async def candidate_anomalies(job: Job, text: str, slots: Any) -> list[str]:
    """Run the response guards the candidate names over its answer; return the rule ids that fired."""
    wanted = set(job.ticket.candidate.anomaly_guards)
    if not wanted or not text:
        return []
    ctx = RequestContext(
        request_id=f"{job.request_id}-shadow",
        route=job.route,
        principal=Principal(job.key_id, job.team),
        body=job.ticket.body,
        raw=b"",
    )
    found: list[str] = []
    for slot in slots:
        if slot.entry.guard not in wanted:
            continue
        scanner = slot.guard.open(ctx)
        if scanner is None:
            continue
        try:
            async with asyncio.timeout(slot.entry.timeout_ms / 1000):
                verdicts = [scanner.feed(text), await scanner.finish(text)]
        except Exception:
            found.append(f"{slot.entry.guard}.error")
            continue
        found.extend(h.rule_id for v in verdicts if not isinstance(v, Allow) for h in v.hits)
    return list(dict.fromkeys(found))


def _append(raw_path: str, line: str) -> None:
    path = Path(raw_path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as f:
        f.write(line + "\n")


async def compare_and_record(
    job: Job, answer: Answer | None, error: str | None, services: Any, prices: dict[str, Price], slots: Any
) -> dict[str, Any]:
    cand = job.ticket.candidate
    config = job.ticket.config
    cand_text = answer.text if answer else ""
    sim = await similarity(services, config.similarity, job.main_text, cand_text) if answer else None
    prompt = last_user_text(job.route, job.ticket.body) or ""
    main_usd = job.cost(prices, job.model, job.main_usage)
    cand_usd = job.cost(prices, cand.model, answer.usage) if answer else None
    record = {
        "ts": round(job.ts, 3),
        "request_id": job.request_id,
        "route": job.route.value,
        "key_id": job.key_id,
        "rule": job.ticket.rule.id,
        "candidate": cand.id,
        "pseudonymised": job.pseudonymised,
        "prompt": scrub(prompt),
        "main": _side(job.model, job.main_text, job.main_usage, job.main_latency_ms, main_usd),
        "shadow": _side(
            cand.model, cand_text, answer.usage if answer else None, answer.latency_ms if answer else None, cand_usd
        )
        | {"error": error},
        "compare": {
            "chars_main": len(job.main_text),
            "chars_shadow": len(cand_text),
            "similarity": sim.value if sim else None,
            "similarity_method": sim.method if sim else None,
            "anomalies_main": list(dict.fromkeys(job.main_anomalies)),
            "anomalies_shadow": await candidate_anomalies(job, cand_text, slots) if answer else [],
            "cost_priced": main_usd is not None and cand_usd is not None,
        },
    }
    line = json.dumps(record, ensure_ascii=False)
    await asyncio.to_thread(_append, config.record_path, line)
    return record
