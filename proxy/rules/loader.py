"""Phase one of rule loading: read YAML and validate it into typed models.

Errors name the file, the rule id (when the failing field sits inside a rule that has
one) and the field, and a failed load never turns into an empty config.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

M = TypeVar("M", bound=BaseModel)


class Strict(BaseModel):
    """Base for every rule-file model: unknown fields are errors, instances are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class RuleLoadError(Exception):
    def __init__(self, file: Path | str, message: str, *, rule_id: str | None = None, field: str | None = None):
        self.file = str(file)
        self.rule_id = rule_id
        self.field = field
        self.detail = message
        where = self.file
        if rule_id:
            where += f": rule {rule_id!r}"
        if field:
            where += f": field {field!r}"
        super().__init__(f"{where}: {message}")


def read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RuleLoadError(path, f"cannot read: {exc.strerror or exc}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise RuleLoadError(path, f"invalid YAML{at}: {getattr(exc, 'problem', exc)}") from None


def _rule_id_at(data: Any, loc: tuple[int | str, ...]) -> str | None:
    """The ``id`` of the innermost mapping on the error path that has one."""
    found: str | None = None
    node = data
    for key in loc:
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            break
        if isinstance(node, dict) and isinstance(node.get("id"), str):
            found = node["id"]
    return found


def validate(model: type[M], data: Any, path: Path) -> M:
    """Validate ``data`` (from ``path``) into ``model``; the first error is reported precisely."""
    if data is None:
        raise RuleLoadError(path, "file is empty")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = tuple(first.get("loc", ()))
        field = ".".join(str(p) for p in loc) or None
        more = len(exc.errors()) - 1
        msg = first.get("msg", "invalid")
        if more:
            msg += f" (and {more} more error{'s' if more > 1 else ''})"
        raise RuleLoadError(path, msg, rule_id=_rule_id_at(data, loc), field=field) from None


def load_file(model: type[M], path: Path) -> M:
    return validate(model, read_yaml(path), path)


def rule_files(directory: Path, pattern: str = "*.yaml") -> list[Path]:
    """Rule files under ``directory`` in a stable order (``*.yaml`` and ``*.yml``)."""
    if not directory.is_dir():
        return []
    found = set(directory.glob(pattern))
    if pattern.endswith(".yaml"):
        found |= set(directory.glob(pattern[: -len(".yaml")] + ".yml"))
    return sorted(p for p in found if not p.name.startswith("."))
