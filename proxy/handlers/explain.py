"""Response headers that explain what the guards decided (``x-guardrail-*``)."""

from __future__ import annotations

from proxy.context import RequestContext
from proxy.verdicts import Allow, Block, Flag, Rewrite, Substitute


def decision_headers(ctx: RequestContext) -> dict[str, str]:
    headers = {"x-guardrail-request-id": ctx.request_id}
    enforced: list[str] = []
    monitored: list[str] = []
    outcome = "allow"
    for d in ctx.decisions:
        v = d.verdict
        if isinstance(v, Allow) or not v.hits:
            continue
        ids = [h.rule_id for h in v.hits]
        if not d.enforced:
            monitored.extend(ids)
            continue
        enforced.extend(ids)
        if isinstance(v, Block):
            outcome = "block"
        elif isinstance(v, Substitute) and outcome != "block":
            outcome = "substitute"
        elif isinstance(v, Rewrite) and outcome == "allow":
            outcome = "rewrite"
        elif isinstance(v, Flag) and outcome == "allow":
            outcome = "flag"
    headers["x-guardrail-decision"] = outcome
    if enforced:
        headers["x-guardrail-rules"] = ",".join(dict.fromkeys(enforced))
    if monitored:
        headers["x-guardrail-monitor"] = ",".join(dict.fromkeys(monitored))
    return headers
