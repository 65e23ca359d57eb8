"""The ``limits`` request guard: reserve, then settle (rules/policy.yaml, rules/pricing.yaml).

Before forwarding, the request's cost is estimated (prompt tokens with tiktoken plus the
output cap, priced from rules/pricing.yaml) and reserved atomically against every limit
of its key and its team: requests/min, tokens/min, concurrent requests, and the token
and USD budgets per day and per month. One refused limit refuses the request (429 with
``Retry-After`` and OpenAI's ``x-ratelimit-*`` headers; an exhausted budget says
``insufficient_quota``) and nothing is taken. When the request ends (success, upstream
error, client gone) a finalizer settles the reservation to the real ``usage``, or to an
estimate of what was consumed when none came, and frees the concurrency slot.

State store unreachable: the key's ``fail_mode`` (or ``limits.fail_mode``) decides:
``open`` lets the request through flagged ``limits.store_unavailable``; ``closed`` refuses
with 503 ``limits_unavailable``. Both are logged and counted in ``store.health``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

from proxy.context import RequestContext
from proxy.limits import tokens
from proxy.limits.estimate import prompt_estimate
from proxy.limits.policy import KeyLimits, LimitsPolicy
from proxy.limits.pricing import Prices, load_pricing
from proxy.pipeline.guard import BuildContext
from proxy.policy.keys import load_policy
from proxy.state.memory import MemoryStore
from proxy.state.store import Admission, Reservation, StateStore, StoreUnavailable, Window
from proxy.verdicts import Allow, Block, Flag, Hit, Verdict

log = logging.getLogger("guardrail.limits")

EXTRAS_KEY = "limits"
# Upstream answered with an error or was never reached: nothing was consumed.
_NOT_CONSUMED = frozenset({"upstream_error", "upstream_unreachable", "upstream_circuit_open"})
CHARS_PER_TOKEN = 4

_LABELS = {
    "rpm": ("requests per min (RPM)", "requests"),
    "tpm": ("tokens per min (TPM)", "tokens"),
    "tpm_too_large": ("tokens per min (TPM): the request alone exceeds the limit", "tokens"),
    "concurrent": ("concurrent requests", "requests"),
    "tokens_day": ("the daily token budget", "insufficient_quota"),
    "tokens_month": ("the monthly token budget", "insufficient_quota"),
    "usd_day": ("the daily USD budget", "insufficient_quota"),
    "usd_month": ("the monthly USD budget", "insufficient_quota"),
}


def duration(seconds: float) -> str:
    """OpenAI's reset format: ``20ms``, ``1.5s``, ``6m0s``, ``1h2m3s``."""
    if seconds < 1:
        return f"{max(0, math.ceil(seconds * 1000))}ms"
    if seconds < 60:
        return f"{math.ceil(seconds * 10) / 10:g}s"
    total = math.ceil(seconds)
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m}m{s}s" if h else f"{m}m{s}s"


def ratelimit_headers(adm: Admission) -> dict[str, str]:
    out: dict[str, str] = {}
    for suffix, w in (("requests", adm.requests), ("tokens", adm.tokens)):
        if isinstance(w, Window):
            out[f"x-ratelimit-limit-{suffix}"] = str(w.limit)
            out[f"x-ratelimit-remaining-{suffix}"] = str(w.remaining)
            out[f"x-ratelimit-reset-{suffix}"] = duration(w.reset_s)
    return out


@dataclass(slots=True)
class Ticket:
    """One request's reservation and how far it got (per-request, in ``ctx.extras``)."""

    res: Reservation
    model: str
    prompt_tokens: int
    state: str = "pending"  # pending (outcome unknown) | admitted | refused | open (store down)
    settled: bool = False


class LimitsGuard:
    name = "limits"

    def __init__(self, policy: LimitsPolicy, prices: Prices, services: Any = None) -> None:
        self.policy = policy
        self.prices = prices
        self.services = services
        self._fallback = MemoryStore()

    @property
    def store(self) -> StateStore:
        state = getattr(self.services, "state", None)
        return state if state is not None else self._fallback

    async def check(self, ctx: RequestContext) -> Verdict:
        kl = self.policy.for_key(ctx.principal.key_id, ctx.principal.team)
        model = ctx.upstream_model or ctx.model
        settings = self.policy.settings
        clamp = kl.conversation.max_tokens
        prompt = await prompt_estimate(ctx, getattr(self.services, "cpu", None))
        cap = tokens.output_cap(ctx.route, ctx.body, clamp, settings.inject_max_tokens, settings.default_output_tokens)
        nano = self.prices.nano_usd(model, prompt, cap)
        if nano is None:
            if kl.has_usd_budget:
                return Block(
                    self.name,
                    f"The model '{model}' has no price in the proxy's pricing table, so its USD budget "
                    "cannot be enforced.",
                    hits=(Hit("limits.unpriced_model", layer="limits", detail=model),),
                    status=404,
                    code="model_not_found",
                )
            nano = 0
        res = Reservation(ctx.request_id, kl.team, kl.subjects, prompt + cap, nano, lease_s=settings.lease_s)
        ticket = Ticket(res, model, prompt)
        ctx.extras[EXTRAS_KEY] = ticket
        ctx.finalizers.append(self.finalize)  # registered first: a timeout mid-admission still settles
        store = self.store
        try:
            adm = await store.admit(res)
        except StoreUnavailable as exc:
            return self._store_down(ctx, kl, ticket, store, exc)
        if not adm.admitted:
            ticket.state = "refused"
            return self._refusal(kl, adm)
        ticket.state = "admitted"
        ctx.response_headers.update(ratelimit_headers(adm))
        return Allow(self.name)

    def _store_down(
        self, ctx: RequestContext, kl: KeyLimits, ticket: Ticket, store: StateStore, exc: Exception
    ) -> Verdict:
        hit = Hit("limits.store_unavailable", layer="limits", detail=f"fail_{kl.fail_mode}")
        log.warning(
            "limits state store unavailable",
            extra={"request_id": ctx.request_id, "fail_mode": kl.fail_mode, "error": str(exc)},
        )
        if kl.fail_mode == "open":
            store.health.fail_open += 1
            ticket.state = "open"
            return Flag(self.name, (hit,), "Limits were not checked: the state store is unreachable (fail open).")
        store.health.fail_closed += 1
        ticket.state = "refused"
        return Block(
            self.name,
            "The proxy cannot check your limits right now (state store unreachable); try again shortly.",
            hits=(hit,),
            status=503,
            code="limits_unavailable",
            type="server_error",
            headers={"Retry-After": "1"},
        )

    def _refusal(self, kl: KeyLimits, adm: Admission) -> Block:
        reason = adm.reason or "rpm"
        label, kind = _LABELS.get(reason, (reason, "requests"))
        retry = max(1, math.ceil(adm.retry_after_s))
        headers = {"Retry-After": str(retry), **ratelimit_headers(adm)}
        hit = Hit(f"limits.{reason}", layer="limits", detail=adm.subject or "")
        if adm.budget:
            return Block(
                self.name,
                f"You exceeded your current quota: {label} of {adm.subject} is used up. "
                f"It resets in {duration(adm.retry_after_s)}.",
                hits=(hit,),
                status=429,
                code="insufficient_quota",
                type="insufficient_quota",
                headers=headers,
            )
        return Block(
            self.name,
            f"Rate limit reached for {label} on {adm.subject}. Please try again in {duration(adm.retry_after_s)}.",
            hits=(hit,),
            status=429,
            code="rate_limit_exceeded",
            type=kind,
            headers=headers,
        )

    def consumed(self, ctx: RequestContext, ticket: Ticket) -> tuple[int, int]:
        """(prompt, completion) tokens the upstream really used, or our best estimate."""
        if ctx.usage is not None:
            return ctx.usage.prompt_tokens, ctx.usage.completion_tokens
        if ctx.upstream_calls == 0 or (ctx.error_code in _NOT_CONSUMED and ctx.output_chars == 0):
            return 0, 0
        return ticket.prompt_tokens, math.ceil(ctx.output_chars / CHARS_PER_TOKEN)

    async def finalize(self, ctx: RequestContext) -> None:
        ticket = ctx.extras.get(EXTRAS_KEY)
        if not isinstance(ticket, Ticket) or ticket.settled or ticket.state == "refused":
            return
        ticket.settled = True
        prompt, completion = self.consumed(ctx, ticket)
        nano = self.prices.nano_usd(ticket.model, prompt, completion) or 0
        store = self.store
        try:
            await store.settle(ticket.res, prompt + completion, nano)
        except StoreUnavailable as exc:
            store.health.settle_failures += 1
            log.warning("limits settlement lost", extra={"request_id": ctx.request_id, "error": str(exc)})


def build(bctx: BuildContext) -> LimitsGuard:
    policy = load_policy(bctx.rules_dir)
    prices = load_pricing(bctx.rules_dir, policy)
    for entry in policy.models.values():  # load the BPE tables now, not on a request
        tokens.for_model(entry.pin)
    return LimitsGuard(LimitsPolicy.compile(policy), prices, bctx.services)
