"""Reconciliation: read the M-PESA portal statement and compare it with our payments."""
