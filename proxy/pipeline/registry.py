"""Guard names (as written in ``rules/pipeline.yaml``) → the factory that builds them.

Factories are referenced as ``module:function`` strings and imported on first use, so a
CLI command never pays for a guard it does not run. ``tests/pipeline/test_registry.py``
checks that every name resolves.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from proxy.pipeline.guard import BuildContext, RequestGuard, ResponseGuard

Stage = Literal["request", "response"]


@dataclass(frozen=True, slots=True)
class GuardSpec:
    stage: Stage
    factory: str  # "module:function"; the function takes a BuildContext

    def resolve(self) -> Callable[[BuildContext], RequestGuard | ResponseGuard]:
        module, _, attr = self.factory.partition(":")
        fn = getattr(importlib.import_module(module), attr)
        if not callable(fn):
            raise TypeError(f"{self.factory} is not callable")
        return fn


REGISTRY: dict[str, GuardSpec] = {
    "phrase_denylist": GuardSpec("request", "proxy.guards.denylist:build"),
    "limits": GuardSpec("request", "proxy.guards.limits:build"),
    "conversation_limits": GuardSpec("request", "proxy.guards.conversation:build"),
    "injection": GuardSpec("request", "proxy.guards.injection.guard:build"),
    "approved": GuardSpec("request", "proxy.guards.approved:build"),
    "canary": GuardSpec("request", "proxy.guards.output.canary:build"),
    "canary_output": GuardSpec("response", "proxy.guards.output.canary:build_response"),
    "output_anomaly": GuardSpec("response", "proxy.guards.output.score:build"),
    "corrections": GuardSpec("response", "proxy.guards.corrections:build"),
    "shadow": GuardSpec("response", "proxy.shadow.guard:build"),
    "pii": GuardSpec("request", "proxy.guards.pii.guard:build"),
    "pii_restore": GuardSpec("response", "proxy.guards.pii.restore:build"),
}


def spec(name: str) -> GuardSpec | None:
    return REGISTRY.get(name)
