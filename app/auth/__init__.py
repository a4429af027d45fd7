"""Logging in and out, and the role checks every view uses."""
