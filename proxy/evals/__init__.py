"""Offline evaluation commands (``guardrail-proxy eval ...``)."""
