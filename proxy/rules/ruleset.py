"""Phase two: compile validated rule files into one frozen ruleset, swapped atomically.

Each request takes the ruleset current when it starts and keeps it to the end.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from proxy.pipeline.config import GuardEntry, PipelineFile
from proxy.pipeline.guard import BuildContext, RequestGuard, ResponseGuard
from proxy.pipeline.registry import spec
from proxy.pipeline.runner import RequestSlot, ResponseSlot
from proxy.policy.keys import Keyring, load_policy
from proxy.rules.loader import RuleLoadError, load_file
from proxy.services import Services


@dataclass(frozen=True, slots=True)
class Ruleset:
    rules_dir: Path
    version: str
    pipeline: PipelineFile
    keyring: Keyring
    request: tuple[RequestSlot, ...]
    response: tuple[ResponseSlot, ...]


def fingerprint(rules_dir: Path) -> str:
    """A digest of every file under the rules directory (what hot reload compares)."""
    h = hashlib.sha256()
    for path in sorted(p for p in rules_dir.rglob("*") if p.is_file() and not p.name.startswith(".")):
        if any(part.startswith(".") for part in path.relative_to(rules_dir).parts):
            continue
        h.update(str(path.relative_to(rules_dir)).encode())
        h.update(b"\0")
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def _build(entry: GuardEntry, stage: str, index: int, rules_dir: Path, services: Services | None) -> object:
    pipeline_file = rules_dir / "pipeline.yaml"
    found = spec(entry.guard)
    if found is None:
        raise RuleLoadError(pipeline_file, f"unknown guard {entry.guard!r}", field=f"{stage}.{index}.guard")
    if found.stage != stage:
        raise RuleLoadError(
            pipeline_file, f"guard {entry.guard!r} is a {found.stage} guard", field=f"{stage}.{index}.guard"
        )
    return found.resolve()(BuildContext(rules_dir=rules_dir, options=dict(entry.options), services=services))


def build_ruleset(rules_dir: Path, services: Services | None = None, *, no_guards: bool = False) -> Ruleset:
    """Validate and compile everything under ``rules_dir``; raises RuleLoadError on any problem."""
    rules_dir = rules_dir.resolve()
    if not rules_dir.is_dir():
        raise RuleLoadError(rules_dir, "rules directory does not exist")
    version = fingerprint(rules_dir)
    pipeline = load_file(PipelineFile, rules_dir / "pipeline.yaml")
    keyring = Keyring.compile(load_policy(rules_dir))
    request: list[RequestSlot] = []
    response: list[ResponseSlot] = []
    if not no_guards:
        for i, entry in enumerate(pipeline.request):
            if entry.enabled:
                guard = _build(entry, "request", i, rules_dir, services)
                assert isinstance(guard, RequestGuard)
                request.append(RequestSlot(entry, guard))
        for i, entry in enumerate(pipeline.response):
            if entry.enabled:
                rguard = _build(entry, "response", i, rules_dir, services)
                assert isinstance(rguard, ResponseGuard)
                response.append(ResponseSlot(entry, rguard))
    return Ruleset(rules_dir, version, pipeline, keyring, tuple(request), tuple(response))
