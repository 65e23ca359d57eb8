"""Injection or jailbreak patterns in the model's own answer (reusing the injection signatures).

An answer that carries "ignore previous instructions…" (e.g. copied from a poisoned
document) can attack the next agent or tool that reads it. The injection package's
public ``Detector`` is imported lazily; when the package is absent or its API does not
fit, the signal is off and says so once in the log and in ``unavailable``.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from proxy.context import RequestContext
from proxy.guards.output.config import InjectionEchoConfig
from proxy.guards.output.signals import BaseSignal
from proxy.verdicts import Hit

if TYPE_CHECKING:
    from proxy.pipeline.guard import BuildContext

log = logging.getLogger("guardrail.output")
RULE = "output.injection_echo"
MODULE = "proxy.guards.injection"


def load_detector(bc: BuildContext) -> tuple[Any | None, str]:
    """(detector, "") or (None, why it is unavailable)."""
    try:
        mod = importlib.import_module(MODULE)
    except ModuleNotFoundError as exc:
        if exc.name and MODULE.startswith(exc.name):
            return None, f"{MODULE} is not installed"
        raise
    cls = getattr(mod, "Detector", None)
    if cls is None:
        return None, f"{MODULE} has no public Detector"
    return cls.from_build_context(bc), ""


def _risk_and_ids(result: Any) -> tuple[float, list[str]]:
    """The detector's ``Findings``: overall risk and the rule ids that fired."""
    return float(result.risk), [h.rule_id for h in result.hits]


def _record(windows: int) -> None:
    """Count the scan for ``/metrics`` (the package is there: its detector just ran)."""
    from proxy.guards.injection import stats

    stats.record("response", [windows])


class EchoSignal(BaseSignal):
    def __init__(self, owner: InjectionEchoSignals) -> None:
        self.owner = owner

    async def finish(self, text: str) -> list[Hit]:
        det = self.owner.detector
        text = text[-self.owner.cfg.max_chars :]
        if det is None or not text.strip():
            return []
        loop = asyncio.get_running_loop()
        cpu = self.owner.services.cpu if self.owner.services is not None else None
        result = await loop.run_in_executor(cpu, det.scan, text)
        _record(int(getattr(result, "windows", 0)))
        risk, ids = _risk_and_ids(result)
        if risk <= 0:
            return []
        detail = "rules=" + ",".join(ids[:5]) if ids else ""
        return [Hit(RULE, min(1.0, risk * self.owner.cfg.weight), "injection", None, "output", detail)]


@dataclass
class InjectionEchoSignals:
    cfg: InjectionEchoConfig
    detector: Any | None
    unavailable: str = ""
    services: Any = None
    name: str = "injection_echo"

    @classmethod
    def create(cls, cfg: InjectionEchoConfig, bc: BuildContext) -> InjectionEchoSignals:
        if not cfg.enabled:
            return cls(cfg, None, "disabled in output.yaml")
        det, why = load_detector(bc)
        if det is None:
            log.warning("output injection-echo signal is off", extra={"reason": why})
        return cls(cfg, det, why, bc.services)

    def open(self, ctx: RequestContext) -> EchoSignal | None:
        return EchoSignal(self) if self.detector is not None else None
