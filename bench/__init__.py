"""Benchmarks run by hand against a large PostgreSQL database (see bench/README.md)."""
