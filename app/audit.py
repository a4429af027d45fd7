"""Write to the audit log: one call, at the place where the audited thing happens."""

from __future__ import annotations

from typing import Any

from flask import has_request_context, request
from flask_login import current_user

from app.extensions import db
from app.models import User
from app.models.audit import AuditAction, AuditEntry


def record(
    action: AuditAction,
    *,
    target: str | None = None,
    actor: User | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEntry:
    """Add an entry to the session; the caller commits it with the change it describes, so the
    change and its record land together. `actor` defaults to the signed-in user."""
    if actor is None and has_request_context() and current_user.is_authenticated:
        actor = current_user._get_current_object()
    entry = AuditEntry(
        actor_id=actor.id if actor is not None else None,
        actor_name=actor.username if actor is not None else None,
        remote_addr=(request.remote_addr or "")[:64] if has_request_context() else None,
        action=action,
        target=target,
        detail=detail or None,
    )
    db.session.add(entry)
    return entry


def target_of(kind: str, ident: int | str | None) -> str:
    return f"{kind}:{ident}"
