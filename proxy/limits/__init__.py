"""Budgets and rate limits: prices, token estimates, and the policy compiled per key."""
