"""``guardrail-proxy rules check DIR``: schema and references of a rules directory.

Every file of every kind (``proxy.rules.kinds``) is validated against its model, then
cross-file references are checked (pipeline guard names exist in the registry at the
right stage, policy models are priced when ``pricing.yaml`` exists), then the whole
pipeline is compiled the way the proxy does at start (without loading models). Errors
print one per line as ``file: rule_id: field: message`` (``-`` for a part that does
not apply) and the exit status is 1; warnings do not change the status.
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from proxy.rules.kinds import KINDS, KindUnavailable, kind_of
from proxy.rules.loader import RuleLoadError, load_file

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class Problem:
    file: str
    message: str
    rule_id: str | None = None
    field: str | None = None
    severity: Severity = "error"

    @classmethod
    def from_error(cls, exc: RuleLoadError, severity: Severity = "error") -> Problem:
        return cls(exc.file, exc.detail, exc.rule_id, exc.field, severity)

    def line(self, base: Path | None = None) -> str:
        file = self.file
        if base is not None:
            try:
                file = str(Path(self.file).relative_to(base))
            except ValueError:
                pass
        prefix = "" if self.severity == "error" else "warning: "
        return f"{prefix}{file}: {self.rule_id or '-'}: {self.field or '-'}: {self.message}"


@dataclass
class Report:
    rules_dir: Path
    problems: list[Problem]
    files: int = 0
    skipped: tuple[str, ...] = ()  # "kind (reason)"

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]


def check_schemas(rules_dir: Path) -> Report:
    """Phase one only: every file of every available kind against its model."""
    report = Report(rules_dir, [])
    skipped: list[str] = []
    for k in KINDS:
        files = k.files(rules_dir)
        try:
            model = k.model_class()
        except KindUnavailable as exc:
            if files:
                skipped.append(f"{k.name} ({exc})")
            continue
        if k.required and not files:
            report.problems.append(Problem(str(rules_dir / k.glob), f"required {k.name} file is missing"))
        for path in files:
            report.files += 1
            try:
                load_file(model, path)
            except RuleLoadError as exc:
                report.problems.append(Problem.from_error(exc))
    for path in sorted(rules_dir.rglob("*")):
        if path.suffix in (".yaml", ".yml") and not path.name.startswith(".") and kind_of(rules_dir, path) is None:
            if not any(part.startswith(".") for part in path.relative_to(rules_dir).parts):
                report.problems.append(
                    Problem(str(path), "no rule kind claims this file; it is ignored", None, None, "warning")
                )
    report.skipped = tuple(skipped)
    return report


def check_references(rules_dir: Path) -> list[Problem]:
    """Cross-file references; call only when pipeline.yaml and policy.yaml validated."""
    from proxy.pipeline.config import PipelineFile
    from proxy.pipeline.registry import spec
    from proxy.policy.keys import load_policy

    problems: list[Problem] = []
    pipeline_path = rules_dir / "pipeline.yaml"
    pipeline = load_file(PipelineFile, pipeline_path)
    for stage, entries in (("request", pipeline.request), ("response", pipeline.response)):
        for i, entry in enumerate(entries):
            found = spec(entry.guard)
            where = f"{stage}.{i}.guard"
            if found is None:
                problems.append(Problem(str(pipeline_path), f"unknown guard {entry.guard!r}", entry.guard, where))
            elif found.stage != stage:
                msg = f"guard {entry.guard!r} is a {found.stage} guard, listed under {stage}"
                problems.append(Problem(str(pipeline_path), msg, entry.guard, where))
    policy = load_policy(rules_dir)
    policy_path = str(rules_dir / "policy.yaml")
    for i, key in enumerate(policy.keys):
        for j, model in enumerate(key.models):
            if policy.models and model not in policy.models:
                msg = f"model {model!r} has no entry under 'models' (not pinned to a version)"
                problems.append(Problem(policy_path, msg, key.id, f"keys.{i}.models.{j}", "warning"))
    pricing = rules_dir / "pricing.yaml"
    if pricing.is_file():
        try:
            from proxy.limits.pricing import load_pricing
        except ModuleNotFoundError:
            pass
        else:
            try:
                load_pricing(rules_dir, policy)
            except RuleLoadError as exc:
                problems.append(Problem.from_error(exc))
            return problems
        priced = _priced_models(pricing)
        if priced is not None:
            for alias, pinned in policy.models.items():
                if alias not in priced and pinned.pin not in priced:
                    msg = f"model {alias!r} (pinned to {pinned.pin!r}) has no price in pricing.yaml"
                    problems.append(Problem(policy_path, msg, alias, f"models.{alias}"))
    return problems


def _priced_models(path: Path) -> set[str] | None:
    from proxy.rules.loader import read_yaml
    from proxy.shadow.pricing import parse

    try:
        return set(parse(read_yaml(path)))
    except RuleLoadError:
        return None  # the schema phase reports an unreadable pricing.yaml


def check_compile(rules_dir: Path) -> list[Problem]:
    """Build the ruleset as the proxy does at start (no services: no models are loaded)."""
    from proxy.rules.ruleset import build_ruleset

    try:
        build_ruleset(rules_dir, None)
    except RuleLoadError as exc:
        return [Problem.from_error(exc)]
    except Exception as exc:  # a guard factory failing is a rules problem to the user
        return [
            Problem(str(rules_dir / "pipeline.yaml"), f"compiling the pipeline failed: {type(exc).__name__}: {exc}")
        ]
    return []


def check(rules_dir: Path, *, compile: bool = True) -> Report:
    rules_dir = rules_dir.resolve()
    if not rules_dir.is_dir():
        return Report(rules_dir, [Problem(str(rules_dir), "rules directory does not exist")])
    report = check_schemas(rules_dir)
    if report.errors:
        return report  # references and compilation assume valid files
    report.problems.extend(check_references(rules_dir))
    if compile and not report.errors:
        report.problems.extend(check_compile(rules_dir))
    return report


def default_dir() -> Path:
    from proxy.serve import default_rules_dir

    return default_rules_dir()


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", type=Path, nargs="?", default=None, help="rules directory (default: ./rules)")
    parser.add_argument("-q", "--quiet", action="store_true", help="print errors only")
    parser.add_argument(
        "--no-compile", action="store_true", help="schema and references only (skips building the guards: fast)"
    )


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.ERROR)  # guards' build-time warnings are not check results
    rules_dir = (args.dir or default_dir()).resolve()
    report = check(rules_dir, compile=not args.no_compile)
    base = Path.cwd()
    for p in report.problems:
        if p.severity == "error" or not args.quiet:
            print(p.line(base))
    if report.errors:
        n = len(report.errors)
        print(f"rules check: {n} error{'s' if n > 1 else ''} in {rules_dir}", file=sys.stderr)
        return 1
    if not args.quiet:
        for s in report.skipped:
            print(f"note: kind {s} not checked")
        print(f"rules check: OK ({report.files} files in {rules_dir})")
    return 0


__all__ = ["Problem", "Report", "check", "configure", "run"]
