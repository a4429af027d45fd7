"""The audit log: written where things happen, listed and exported by admins, never changed."""

from __future__ import annotations

import csv
import io

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DatabaseError

from app import audit
from app.extensions import db
from app.models import AuditAction, AuditEntry, User
from tests.helpers import post_json, success_callback


def _entries():
    """The log, without the fixtures' own sign-ins (tested in tests/auth)."""
    db.session.expire_all()
    return (
        db.session.execute(
            sa.select(AuditEntry)
            .where(AuditEntry.action.not_like("sign_in.%"))
            .order_by(AuditEntry.id)
        )
        .scalars()
        .all()
    )


def test_the_database_refuses_to_change_or_delete_an_entry(app):
    admin = db.session.execute(sa.select(User).where(User.username == "admin")).scalar_one()
    audit.record(AuditAction.USER_UNLOCKED, target="user:9", actor=admin)
    db.session.commit()
    for statement in ("UPDATE audit_log SET action = 'x'", "DELETE FROM audit_log"):
        with pytest.raises(DatabaseError):
            with db.engine.begin() as conn:
                conn.execute(sa.text(statement))
    [entry] = _entries()
    assert entry.action == "user.unlocked" and entry.actor_name == "admin"
    entry.action = "tampered"
    with pytest.raises(RuntimeError, match="append-only"):
        db.session.flush()
    db.session.rollback()


def test_resolving_and_reprocessing_are_audited(admin_client, client, till, make_payment):
    p = make_payment(status="unknown")
    admin_client.post(
        f"/owner/payments/{p.id}/resolve", data={"outcome": "not_paid", "note": "statement"}
    )
    post_json(client, f"/cb/stk/{till.callback_token}", success_callback("ws_CO_NOBODY"))
    raw_id = db.session.execute(sa.text("SELECT id FROM raw_callbacks")).scalar_one()
    admin_client.post(f"/admin/callbacks/{raw_id}/reprocess")
    actions = [(e.action, e.target, e.actor_name) for e in _entries()]
    assert actions == [
        ("payment.resolved_by_hand", f"payment:{p.id}", "admin"),
        ("callback.reprocessed", f"callback:{raw_id}", "admin"),
    ]
    assert _entries()[0].remote_addr == "127.0.0.1"


def test_admins_filter_and_export_the_log(admin_client, owner_client):
    admin = db.session.execute(sa.select(User).where(User.username == "admin")).scalar_one()
    for i in range(3):
        audit.record(AuditAction.TOKEN_ROTATED, target=f"till:{i}", actor=admin)
    audit.record(AuditAction.USER_UNLOCKED, target="user:5", actor=admin, detail={"by": "x"})
    db.session.commit()
    page = admin_client.get("/admin/audit?action=till.callback_token_rotated").get_data(
        as_text=True
    )
    assert page.count("till.callback_token_rotated") >= 3 and "user:5" not in page
    assert "user:5" in admin_client.get("/admin/audit?target=user:5").get_data(as_text=True)
    exported = admin_client.get("/admin/audit.csv?action=user.unlocked")
    assert exported.mimetype == "text/csv"
    text = exported.get_data(as_text=True)
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert rows[0][:5] == ["id", "at (Nairobi)", "actor", "from", "action"]
    assert [r[4] for r in rows[1:]] == ["user.unlocked"] and rows[1][6] == "by=x"
    assert owner_client.get("/admin/audit").status_code == 403


def test_paging_back_by_id(admin_client):
    from app.admin.audit import PAGE

    admin = db.session.execute(sa.select(User).where(User.username == "admin")).scalar_one()
    for i in range(PAGE + 5):
        audit.record(AuditAction.CONNECTION_TESTED, target=f"till:{i}", actor=admin)
    db.session.commit()
    first = admin_client.get("/admin/audit").get_data(as_text=True)
    assert f"till:{PAGE + 4}" in first and 'id="audit-older"' in first
    older = first.split('id="audit-older"')[0].rsplit('href="', 1)[1].split('"')[0]
    second = admin_client.get(older.replace("&amp;", "&")).get_data(as_text=True)
    assert "till:0" in second and f"till:{PAGE + 4}" not in second
