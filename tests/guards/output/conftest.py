"""Output-guard fixtures (see harness.py)."""

from tests.guards.output.harness import guarded_proxy, output_guards_registered

__all__ = ["guarded_proxy", "output_guards_registered"]
