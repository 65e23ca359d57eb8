"""Every kind of rule file: where it lives under the rules directory, its model, its tester.

The rules CLI (``check``, ``test``, ``schema``) and editors' JSON Schemas are driven by
this table. Models and testers are ``module:attr`` strings imported on first use; a kind
whose module does not exist (yet) is skipped with a note rather than failing, so the
table can list kinds other work is still building. ``tests/rules/test_rules_kinds.py``
checks that every kind whose module exists resolves.

A tester has the signature ``test_rules(rules_dir: Path, benign: list[str] | None) ->
list[tuple[str, str, str]]`` and returns failures as ``(file, rule_id, message)``: each
rule's examples, and zero hits on the benign texts except the rule's listed known false
positives. It is given the directory that holds the kind's files: the rules directory
for a single-file kind (``denylist.yaml``), the sub-directory for a directory kind
(``injection/*.yaml`` → ``<rules>/injection``); ``RuleKind.tester_dir`` says which.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from pydantic import BaseModel

from proxy.rules.loader import rule_files

Failure = tuple[str, str, str]  # (file, rule_id, message)
Tester = Callable[[Path, "list[str] | None"], list[Failure]]


class KindUnavailable(Exception):
    """The kind's module is not part of this build (yet)."""


def _import(ref: str) -> object:
    module_name, _, attr = ref.partition(":")
    module = _module(module_name)
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ImportError(f"{module_name} has no attribute {attr!r} (from {ref!r})") from None


def _module(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        # Only "this module (or a parent package) is missing" means unavailable; a missing
        # third-party dependency inside an existing module is a real error.
        if exc.name is not None and (name == exc.name or name.startswith(exc.name + ".")):
            raise KindUnavailable(f"module {name} is not available") from None
        raise


@dataclass(frozen=True, slots=True)
class RuleKind:
    name: str
    glob: str  # relative to the rules directory: "policy.yaml" or "injection/*.yaml"
    model: str  # "module:Class", a pydantic model (rules.loader.Strict)
    tester: str | None = None  # "module:function", see the module docstring
    required: bool = False  # the proxy does not start without it
    description: str = ""

    @property
    def is_directory(self) -> bool:
        return "/" in self.glob

    def files(self, rules_dir: Path) -> list[Path]:
        """The files of this kind present in ``rules_dir`` (``.yml`` accepted too)."""
        if self.is_directory:
            sub, _, pattern = self.glob.rpartition("/")
            return rule_files(rules_dir / sub, pattern)
        for name in (self.glob, self.glob[: -len(".yaml")] + ".yml" if self.glob.endswith(".yaml") else None):
            if name and (rules_dir / name).is_file():
                return [rules_dir / name]
        return []

    def tester_dir(self, rules_dir: Path) -> Path:
        """The directory a tester is given: where this kind's files live."""
        return rules_dir / self.glob.rpartition("/")[0] if self.is_directory else rules_dir

    def available(self) -> bool:
        try:
            self.model_class()
        except KindUnavailable:
            return False
        return True

    def model_class(self) -> type[BaseModel]:
        """The file model; raises KindUnavailable when its module does not exist."""
        cls = _import(self.model)
        if not (isinstance(cls, type) and issubclass(cls, BaseModel)):
            raise TypeError(f"{self.model} is not a pydantic model")
        return cls

    def tester_fn(self) -> Tester | None:
        """The tester, or None (no tester declared, or its module does not exist yet)."""
        if self.tester is None:
            return None
        try:
            fn = _import(self.tester)
        except KindUnavailable:
            return None
        if not callable(fn):
            raise TypeError(f"{self.tester} is not callable")
        return fn


KINDS: tuple[RuleKind, ...] = (
    RuleKind(
        "pipeline",
        "pipeline.yaml",
        "proxy.pipeline.config:PipelineFile",
        required=True,
        description="Which guards run, in which order and mode",
    ),
    RuleKind(
        "policy",
        "policy.yaml",
        "proxy.policy.schema:PolicyFile",
        required=True,
        description="Proxy keys, teams and model aliases",
    ),
    RuleKind(
        "denylist",
        "denylist.yaml",
        "proxy.guards.denylist:DenylistFile",
        tester="proxy.rules.testers:test_denylist",
        description="Literal phrases never allowed in prompts",
    ),
    RuleKind(
        "injection",
        "injection/*.yaml",
        "proxy.guards.injection.rules:InjectionFile",
        tester="proxy.guards.injection.selftest:test_rules",
        description="Prompt-injection and jailbreak signatures",
    ),
    RuleKind("pii", "pii.yaml", "proxy.guards.pii.config:PiiFile", description="PII entities, recognizers, operators"),
    RuleKind(
        "output",
        "output.yaml",
        "proxy.guards.output.config:OutputFile",
        description="Output anomaly signals and actions",
    ),
    RuleKind(
        "approved",
        "approved/*.yaml",
        "proxy.guards.approved:ApprovedFile",
        description="Pre-approved answers",
    ),
    RuleKind(
        "corrections",
        "corrections/*.yaml",
        "proxy.guards.corrections:CorrectionsFile",
        description="Known-bad answers and their corrections",
    ),
    RuleKind("shadow", "shadow.yaml", "proxy.shadow.config:ShadowFile", description="Shadow traffic to candidates"),
    RuleKind("probes", "probes.yaml", "proxy.probes.config:ProbesFile", description="Scheduled model health probes"),
    # Built by the budgets/limits work; skipped until proxy/limits/pricing.py exists.
    RuleKind("pricing", "pricing.yaml", "proxy.limits.pricing:PricingFile", description="Prices per model"),
)


def kind(name: str) -> RuleKind:
    for k in KINDS:
        if k.name == name:
            return k
    raise KeyError(name)


def kind_of(rules_dir: Path, path: Path) -> RuleKind | None:
    """Which kind a file under ``rules_dir`` belongs to (None: no kind claims it)."""
    for k in KINDS:
        if path in k.files(rules_dir):
            return k
    return None


__all__ = ["KINDS", "Failure", "KindUnavailable", "RuleKind", "Tester", "kind", "kind_of"]
