"""The real redis-server fixtures live in tests/conftest.py (shared with the limits tests)."""
