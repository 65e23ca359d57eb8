"""Injection and jailbreak detection against the signature database in ``rules/injection/``.

``Detector`` (imported lazily) is the public entry point other guards reuse, e.g. the
output guard's injection-echo signal: ``Detector.from_build_context(bc)`` and
``scan(text)`` → ``Findings`` (a list with ``.risk`` and ``.hits``).
"""

from __future__ import annotations

from typing import Any

__all__ = ["Detector"]


def __getattr__(name: str) -> Any:
    if name == "Detector":
        from proxy.guards.injection.detector import Detector

        return Detector
    raise AttributeError(name)
