"""The proxy with extensions installed (shared with tests/shadow)."""

from tests.shadow.conftest import start_proxy

__all__ = ["start_proxy"]
