"""PII fixtures: the shipped pii.yaml and one engine for the whole session (Presidio costs ~7 s)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from proxy.guards.pii.config import PiiFile, load
from proxy.guards.pii.engine import PiiEngine
from proxy.guards.pii.guard import shared_engine
from tests.conftest import RULES


@pytest.fixture(scope="session")
def pii_cfg() -> PiiFile:
    return load(RULES / "pii.yaml")


@pytest.fixture(scope="session")
def pii_engine(pii_cfg: PiiFile) -> PiiEngine:
    # The same cached engine the proxy builds from the shipped rules.
    return shared_engine(pii_cfg.model_dump_json(), pii_cfg.ner)


def edit_pii(rules_dir: Path, **changes: object) -> None:
    path = rules_dir / "pii.yaml"
    data = yaml.safe_load(path.read_text())
    data.update(changes)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
