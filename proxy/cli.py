"""``guardrail-proxy``: one entry point, subcommands implemented in their own modules.

Each command module exposes ``configure(parser)`` and ``run(args) -> int`` and is
imported only when its command runs, so ``serve`` never imports evaluation code.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# (command, subcommand or None) → module implementing configure()/run()
COMMANDS: dict[tuple[str, str | None], tuple[str, str]] = {
    ("serve", None): ("proxy.serve", "Run the proxy."),
    ("fake-upstream", None): ("proxy.devtools.fake_upstream_cli", "Run a fake OpenAI upstream (demos, benchmarks)."),
    ("shadow", "report"): ("proxy.shadow.report", "Summarise a shadow JSONL file per candidate."),
    ("eval", "injection"): ("proxy.evals.injection", "Score the injection detector on labelled JSONL."),
    ("eval", "pii"): ("proxy.evals.pii", "Score the PII guard against vanilla Presidio on span-labelled JSONL."),
    ("rules", "check"): ("proxy.rules.cli_check", "Validate a rules directory: schema, references, compilation."),
    ("rules", "test"): ("proxy.rules.cli_test", "Run every rule's examples (and a benign corpus) through its tester."),
    ("rules", "schema"): ("proxy.rules.cli_schema", "Write a JSON Schema per rule-file kind (for editors)."),
    ("scan", None): ("proxy.scan_cli", "Run the request guards on a text or JSON request offline; print verdicts."),
    ("audit", "verify"): ("proxy.ops.audit_cli", "Verify an audit trail's hash chain; names the first broken line."),
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="guardrail-proxy", description="Guardrail sidecar for LLM applications.")
    top = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    groups: dict[str, argparse._SubParsersAction[argparse.ArgumentParser]] = {}
    for (cmd, sub), (module, help_text) in COMMANDS.items():
        if sub is None:
            p = top.add_parser(cmd, help=help_text, description=help_text)
        else:
            if cmd not in groups:
                gp = top.add_parser(cmd, help=f"{cmd} commands")
                groups[cmd] = gp.add_subparsers(dest="subcommand", required=True, metavar="SUBCOMMAND")
            p = groups[cmd].add_parser(sub, help=help_text, description=help_text)
        p.set_defaults(_module=module)
        p.set_defaults(_configure_pending=True)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    # Parse once to find the command (without -h, so a command's own options show in its
    # help), then let its module add its own options.
    helps = ("-h", "--help")
    probe = [a for a in argv if a not in helps]
    complete = bool(probe) and (
        (probe[0], None) in COMMANDS or (len(probe) > 1 and (probe[0], probe[1]) in COMMANDS)
    )
    if not complete and any(a in helps for a in argv):
        parser.parse_args(argv)  # the top-level or group help, then exit
    known, _ = parser.parse_known_args(probe)
    module = importlib.import_module(known._module)
    sub = argparse.ArgumentParser(
        prog=f"guardrail-proxy {' '.join(argv[: 2 if getattr(known, 'subcommand', None) else 1])}"
    )
    module.configure(sub)
    skip = 2 if getattr(known, "subcommand", None) else 1
    args = sub.parse_args(argv[skip:])
    return int(module.run(args))


if __name__ == "__main__":
    sys.exit(main())
