"""Read-only report queries."""
