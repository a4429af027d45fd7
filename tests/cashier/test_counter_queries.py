"""The counter costs a constant number of SQL statements, whatever the number of rows."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import timedelta

import sqlalchemy as sa

from app.extensions import db
from app.models.types import utcnow

HX = {"HX-Request": "true"}
# Every kind of row: live, paid, failed (resendable or not), refused, unknown, cancelled.
MIX = [
    {"status": "pending"},
    {"status": "paid", "receipt_number": None},
    {"status": "failed", "result_code": "1032"},
    {"status": "failed", "result_code": "8006"},
    {"status": "rejected", "push_error_code": "DarajaSubscriberLocked"},
    {"status": "unknown"},
    {"status": "unconfirmed"},
    {"status": "initiating", "push_started_at": None},
]


@contextmanager
def counted():
    statements: list[str] = []

    def count(_conn, _cursor, statement, *_args):
        statements.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", count)


def _fill(make_payment, n: int, start: int = 0) -> list:
    now = utcnow()
    made = []
    for i in range(start, start + n):
        kind = dict(MIX[i % len(MIX)])
        at = now - timedelta(seconds=400 + i)
        if kind["status"] == "paid":
            kind["receipt_number"] = f"RCPT{i:06d}"
        # Distinct phones, as at a real counter, so each row has its own refusal windows.
        made.append(
            make_payment(
                amount=100 + i,
                phone=f"2547{i:08d}",
                pushed_at=at,
                final_at=at,
                **kind,
            )
        )
    return made


def test_statement_count_does_not_grow_with_rows(cashier_client, make_payment):
    """The same measure in one test: 5 rows, then 35 more."""
    _fill(make_payment, 5)
    cashier_client.get("/cashier/")
    with counted() as few:
        cashier_client.get("/cashier/")
    _fill(make_payment, 35, start=5)
    with counted() as many:
        page = cashier_client.get("/cashier/")
    assert page.get_data(as_text=True).count('class="row ') == 40
    assert len(many) == len(few), "\n---\n".join(many)
    # user, till, today's rows, totals, the resend rule (re-sent map, sales, refusal windows)
    assert len(many) <= 7, "\n---\n".join(many)


def test_a_live_row_poll_is_a_few_statements(cashier_client, make_payment):
    pending = make_payment(status="pending")
    failed = make_payment(status="failed", result_code="1032", phone="254711000001")
    cashier_client.get(f"/cashier/payments/{pending.id}/row?seen=pin", headers=HX)
    with counted() as statements:
        r = cashier_client.get(f"/cashier/payments/{pending.id}/row?seen=pin", headers=HX)
    assert r.status_code == 200
    assert len(statements) <= 2, statements  # the user and the payment
    with counted() as statements:
        cashier_client.get(f"/cashier/payments/{failed.id}/row?seen=failed", headers=HX)
    assert len(statements) <= 5, statements  # plus the resend rule for a failed row
