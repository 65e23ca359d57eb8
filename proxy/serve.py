"""``guardrail-proxy serve``."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from aiohttp import web

from proxy import logs
from proxy.rules.loader import RuleLoadError
from proxy.runtime import Settings
from proxy.upstream.client import UpstreamSettings

DEFAULT_UPSTREAM = "https://api.openai.com/v1"


def default_rules_dir() -> Path:
    env = os.environ.get("GUARDRAIL_RULES_DIR")
    if env:
        return Path(env)
    here = Path.cwd() / "rules"
    return here if here.is_dir() else Path(__file__).resolve().parent.parent / "rules"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default=os.environ.get("GUARDRAIL_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("GUARDRAIL_PORT", "8080")))
    parser.add_argument("--rules", type=Path, default=None, help="rules directory (default: ./rules)")
    parser.add_argument(
        "--upstream", default=None, help=f"upstream base URL (default: $GUARDRAIL_UPSTREAM_URL or {DEFAULT_UPSTREAM})"
    )
    parser.add_argument(
        "--no-guards", action="store_true", help="same request path, empty pipeline (overhead baseline)"
    )
    parser.add_argument("--log-level", default=os.environ.get("GUARDRAIL_LOG_LEVEL", "info"))


def settings_from(args: argparse.Namespace) -> Settings:
    return Settings(
        rules_dir=(args.rules or default_rules_dir()).resolve(),
        upstream=UpstreamSettings(
            url=args.upstream or os.environ.get("GUARDRAIL_UPSTREAM_URL") or DEFAULT_UPSTREAM,
            api_key=os.environ.get("GUARDRAIL_UPSTREAM_API_KEY") or None,
        ),
        redis_url=os.environ.get("GUARDRAIL_REDIS_URL") or None,
        no_guards=args.no_guards,
    )


def run(args: argparse.Namespace) -> int:
    from proxy.app import create_app

    logs.setup(args.log_level)
    settings = settings_from(args)
    try:
        app = create_app(settings)
        from proxy.rules.watch import handle_sighup

        handle_sighup(app)  # SIGHUP forces a rules reload instead of killing the process
        web.run_app(
            app,
            host=args.host,
            port=args.port,
            access_log=None,
            handler_cancellation=True,
            print=lambda _: print(
                f"guardrail-proxy listening on http://{args.host}:{args.port}/v1 "
                f"(rules: {settings.rules_dir}, upstream: {settings.upstream.url})",
                file=sys.stderr,
            ),
        )
    except RuleLoadError as exc:
        print(f"guardrail-proxy: rules rejected: {exc}", file=sys.stderr)
        return 2
    return 0
