"""PII redaction: request guard ``pii`` (guard.py) and response guard ``pii_restore`` (restore.py)."""
