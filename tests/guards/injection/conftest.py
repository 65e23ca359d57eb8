"""One detector over the shipped rules, with the real shared embedding model, per session."""

from __future__ import annotations

import pytest

from proxy.embedding import load_default
from proxy.guards.injection.detector import Detector
from proxy.guards.injection.rules import load_rules
from tests.conftest import RULES


@pytest.fixture(scope="session")
def detector() -> Detector:
    return Detector.from_loaded(load_rules(RULES / "injection"), load_default())
