"""Helpers for tests that need more than fixtures: EXPLAIN what a block of code ran."""
