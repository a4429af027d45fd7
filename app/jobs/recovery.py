"""Recovery jobs: finish what an outage or an early arrival left half done."""

from __future__ import annotations

from datetime import datetime

from app.callbacks import inbox
from app.payments import journal, service


def sweep_inbox(now: datetime | None = None) -> dict[str, int]:
    """Apply stored callbacks that were interrupted, or that arrived before their push answer."""
    return inbox.sweep(now)


def replay_push_journal() -> dict[str, int]:
    """Record push answers kept in the local journal while the database was down."""
    return journal.replay(service.replay_journal_entry)
