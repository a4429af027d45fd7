"""The audit log: who did what, when and from where; append-only in the app and the database."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import DDL, JSON, ForeignKey, Index, String, event
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models.types import UTCDateTime, utcnow


class AuditAction(enum.StrEnum):
    """Every kind of entry (named once; the admin's filter lists these)."""

    SHOP_CREATED = "shop.created"
    SHOP_CHANGED = "shop.changed"
    TILL_CREATED = "till.created"
    TILL_CHANGED = "till.changed"  # its detail lists the cashiers assigned, too
    TILL_ARCHIVED = "till.archived"
    TILL_RESTORED = "till.restored"
    CREDENTIALS_REPLACED = "till.credentials_replaced"
    TOKEN_ROTATED = "till.callback_token_rotated"
    CONNECTION_TESTED = "till.connection_tested"
    USER_CREATED = "user.created"
    USER_ROLE_CHANGED = "user.role_changed"
    USER_DEACTIVATED = "user.deactivated"
    USER_REACTIVATED = "user.reactivated"
    PASSWORD_RESET = "user.password_reset"
    PASSWORD_CHANGED = "user.password_changed"
    USER_UNLOCKED = "user.unlocked"
    TWO_FACTOR_ENROLLED = "user.2fa_enrolled"
    TWO_FACTOR_RESET = "user.2fa_reset"
    TWO_FACTOR_REQUIRED = "settings.2fa_required"
    SIGN_IN = "sign_in.success"
    SIGN_IN_FAILED = "sign_in.failure"
    SIGN_IN_LOCKED = "sign_in.lockout"
    SIGNED_OUT = "sign_in.signed_out"
    CALLBACK_REPROCESSED = "callback.reprocessed"
    ORPHAN_LINKED = "callback.linked_to_sale"
    ORPHAN_ACCEPTED = "callback.accepted_as_sale"
    DAY_CLOSED = "day.closed"
    STATEMENT_UPLOADED = "statement.uploaded"
    STATEMENT_ATTACHED = "statement.attached_to_sale"
    STATEMENT_OUTSIDE = "statement.paid_outside"
    # (Refused callbacks are counted on the till and logged, not audited: a flood of forged
    # callbacks must not be able to grow this table.)
    PAYMENT_RESOLVED = "payment.resolved_by_hand"
    RECEIPT_ATTACHED = "payment.receipt_attached"
    KEYS_ROTATED = "secrets.reencrypted"


class AuditEntry(db.Model):
    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_action_at", "action", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    #: who: the user, and their name as it was then (kept if the user is renamed)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    actor_name: Mapped[str | None] = mapped_column(String(64))
    #: from where: the client address (behind proxies, as PESADESK_TRUSTED_PROXIES allows)
    remote_addr: Mapped[str | None] = mapped_column(String(64))
    #: an AuditAction
    action: Mapped[str] = mapped_column(String(40))
    #: what it was done to, e.g. "till:3", "user:7", "payment:12" (never a secret)
    target: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)


# Nothing in the app may edit or delete an entry; the database refuses too (also for a
# forgotten code path or a hand-written UPDATE).
_NO_CHANGE_SQLITE = [
    DDL(
        f"CREATE TRIGGER IF NOT EXISTS audit_log_no_{verb.lower()} BEFORE {verb} ON audit_log "
        "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END"
    ).execute_if(dialect="sqlite")
    for verb in ("UPDATE", "DELETE")
]
_NO_CHANGE_PG = [
    DDL(
        "CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger AS $$ BEGIN "
        "RAISE EXCEPTION 'the audit log is append-only'; END $$ LANGUAGE plpgsql"
    ).execute_if(dialect="postgresql"),
    DDL(
        "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_log "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()"
    ).execute_if(dialect="postgresql"),
]
for _ddl in (*_NO_CHANGE_SQLITE, *_NO_CHANGE_PG):
    event.listen(AuditEntry.__table__, "after_create", _ddl)


@event.listens_for(AuditEntry, "before_update")
@event.listens_for(AuditEntry, "before_delete")
def _append_only(*_args: object) -> None:
    raise RuntimeError("the audit log is append-only")
