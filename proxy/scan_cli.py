"""``guardrail-proxy scan``: run a rules directory's request guards on one request, offline.

Give a text (``--text``, or a positional argument, or ``-`` for stdin: it becomes the
user message of a chat request) or a JSON request body (``--request FILE``, ``-`` for
stdin). The request goes through the same typed validation and model pinning as a real
one, then through the request guards in pipeline order (monitor mode included), and
the verdicts print as one JSON object. Nothing is sent anywhere; state is in memory.
Exit status: 0 (whatever the decision; ``--fail-on`` changes that), 2 on bad input.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Any

from proxy.context import Principal, RequestContext, Route
from proxy.errors import ProxyError
from proxy.handlers.explain import decision_headers
from proxy.rules.loader import RuleLoadError
from proxy.rules.ruleset import Ruleset, build_ruleset
from proxy.services import Services
from proxy.verdicts import Block, Flag, Rewrite, Substitute, Verdict

ROUTES = {
    "chat": Route.CHAT,
    "completions": Route.COMPLETIONS,
    "responses": Route.RESPONSES,
    "embeddings": Route.EMBEDDINGS,
}


def body_for_text(route: Route, model: str, text: str) -> dict[str, Any]:
    if route is Route.CHAT:
        return {"model": model, "messages": [{"role": "user", "content": text}]}
    if route is Route.COMPLETIONS:
        return {"model": model, "prompt": text}
    return {"model": model, "input": text}


def principal_for(rules: Ruleset, key_id: str | None) -> Principal:
    principals = sorted(rules.keyring.by_digest.values(), key=lambda p: p.key_id)
    if key_id is not None:
        for p in principals:
            if p.key_id == key_id:
                return p
        raise ProxyError(401, f"no key with id {key_id!r} in policy.yaml", code="invalid_api_key")
    return principals[0] if principals else Principal(key_id="scan", team="scan")


def verdict_json(verdict: Verdict) -> dict[str, Any]:
    out: dict[str, Any] = {"verdict": type(verdict).__name__.lower(), "guard": verdict.guard}
    out["hits"] = [{k: v for k, v in asdict(h).items() if v not in ("", None)} for h in verdict.hits]
    if isinstance(verdict, Block):
        out.update(status=verdict.status, code=verdict.code, message=verdict.message)
    elif isinstance(verdict, Substitute):
        out.update(finish_reason=verdict.finish_reason, text=verdict.text)
    elif isinstance(verdict, Flag | Rewrite) and verdict.message:
        out["message"] = verdict.message
    return out


async def scan(rules: Ruleset, ctx: RequestContext) -> dict[str, Any]:
    from proxy.handlers.intake import authorize_model
    from proxy.pipeline.runner import run_request_guards

    authorize_model(ctx, rules.keyring)
    try:
        ending = await run_request_guards(rules.request, ctx)
    finally:
        for fn in ctx.finalizers:
            try:
                await fn(ctx)
            except Exception:
                logging.getLogger("guardrail.scan").exception("finalizer failed")
    headers = decision_headers(ctx)
    result: dict[str, Any] = {
        "decision": headers["x-guardrail-decision"],
        "rules": [r for r in headers.get("x-guardrail-rules", "").split(",") if r],
        "monitor": [r for r in headers.get("x-guardrail-monitor", "").split(",") if r],
        # The verdict that ended the request (also listed under "verdicts"), if any.
        "ending": {"guard": ending.guard, "verdict": type(ending).__name__.lower()} if ending is not None else None,
        "verdicts": [
            {**verdict_json(d.verdict), "enforced": d.enforced, "elapsed_ms": round(d.elapsed_ms, 3)}
            for d in ctx.decisions
        ],
        "body_changed": ctx.body_changed,
    }
    return result


def read_input(args: argparse.Namespace) -> tuple[Route, dict[str, Any] | None, str | None]:
    route = ROUTES[args.route]
    if args.request is not None:
        raw = sys.stdin.read() if str(args.request) == "-" else Path(args.request).read_text(encoding="utf-8")
        return route, _parse_body(raw.encode(), route), None
    text = args.text if args.text is not None else args.text_arg
    if text == "-":
        text = sys.stdin.read()
    if text is None:
        raise ProxyError(400, "give a text (--text or an argument) or a JSON request (--request FILE)", code="usage")
    return route, None, text


def _parse_body(raw: bytes, route: Route) -> dict[str, Any]:
    from proxy.handlers.intake import parse_json, validate

    body = parse_json(raw, 64)
    validate(route, body)
    return body


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("text_arg", nargs="?", default=None, metavar="TEXT", help="text to scan ('-': stdin)")
    parser.add_argument("--text", default=None, help="text to scan, sent as the user message")
    parser.add_argument("--request", default=None, metavar="FILE", help="a JSON request body ('-': stdin)")
    parser.add_argument("--route", choices=sorted(ROUTES), default="chat", help="API route (default: chat)")
    parser.add_argument("--model", default=None, help="model for --text (default: the key's first model)")
    parser.add_argument("--key-id", default=None, help="act as this key id from policy.yaml (default: the first)")
    parser.add_argument("--rules", type=Path, default=None, help="rules directory (default: ./rules)")
    parser.add_argument("--show-body", action="store_true", help="include the request body after guards")
    parser.add_argument(
        "--fail-on", choices=["block", "substitute", "flag"], default=None, help="exit 1 at this decision or worse"
    )


SEVERITY = {"allow": 0, "rewrite": 1, "flag": 1, "substitute": 2, "block": 3}


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    logging.basicConfig(level=logging.ERROR)
    from proxy.serve import default_rules_dir

    rules_dir = (args.rules or default_rules_dir()).resolve()
    services = Services()
    try:
        from proxy.state import make_store

        services.state = make_store(None)  # in memory: a scan never touches shared state
    except ImportError:
        pass
    try:
        try:
            route, body, text = read_input(args)
            rules = build_ruleset(rules_dir, services)
            principal = principal_for(rules, args.key_id)
            if body is None:
                model = args.model or (principal.models[0] if principal.models else "gpt-4o-mini")
                body = body_for_text(route, model, text or "")
            ctx = RequestContext(
                request_id=f"scan-{uuid.uuid4().hex[:12]}",
                route=route,
                principal=principal,
                body=body,
                raw=json.dumps(body).encode(),
                stream=bool(body.get("stream")) and route is not Route.EMBEDDINGS,
            )
            result = asyncio.run(scan(rules, ctx))
        except ProxyError as exc:
            print(json.dumps({**exc.payload(), "status": exc.status}, indent=2))
            return 2
        except RuleLoadError as exc:
            print(json.dumps({"error": {"type": "rules_rejected", "message": str(exc)}}, indent=2))
            return 2
        except OSError as exc:
            print(json.dumps({"error": {"type": "input_error", "message": str(exc)}}, indent=2))
            return 2
        if args.show_body:
            result["body"] = ctx.body
        print(json.dumps(result, indent=2, ensure_ascii=False))
        if args.fail_on is not None and SEVERITY[result["decision"]] >= SEVERITY[args.fail_on]:
            return 1
        return 0
    finally:
        services.close()


__all__ = ["configure", "run", "scan"]
