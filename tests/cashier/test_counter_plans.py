"""Every query on the counter's send, poll and page paths is served by an index (PostgreSQL).

The payments table grows by thousands of rows a day and is never pruned: a query that reads
it whole gets slower every day (bench/counter.py measures it with a million payments). Here
each statement those paths run is EXPLAINed with sequential scans switched off, so that on
this small test table the planner still takes an index whenever one can serve the query.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from app.extensions import db
from app.models.types import utcnow
from tests.support.explain import capture_statements, plans_without_index

HX = {"HX-Request": "true"}


def _no_scans(captured) -> list[str]:
    with db.engine.connect() as conn:
        return plans_without_index(conn, captured)


@pytest.mark.parametrize("backend", ["postgresql"])  # EXPLAIN is PostgreSQL's
def test_send_poll_and_counter_queries_use_indexes(backend, live_app, cashier_client, make_payment):
    now = utcnow()
    earlier = now - timedelta(seconds=400)
    for i, kind in enumerate(
        [
            {"status": "paid", "receipt_number": "PLAN000001"},
            {"status": "failed", "result_code": "1032"},
            {"status": "rejected", "push_error_code": "DarajaSubscriberLocked"},
            {"status": "unknown"},
        ]
    ):
        make_payment(amount=100 + i, phone=f"25471100000{i}", pushed_at=earlier, final_at=earlier,
                     **kind)  # fmt: skip
    failed = make_payment(status="failed", result_code="1037", phone="254711000009",
                          pushed_at=earlier, final_at=earlier)  # fmt: skip

    with capture_statements(db.engine) as counter:
        assert cashier_client.get("/cashier/").status_code == 200
        assert cashier_client.get("/cashier/?q=149", headers={**HX, "HX-Target": "payment-rows"})
    with capture_statements(db.engine) as send:
        saved = cashier_client.post(
            "/cashier/payments",
            data={"phone": "0708374149", "amount": "55", "idempotency_key": "e" * 32},
            headers=HX,
        )
        payment_id = re.search(r'id="payment-(\d+)"', saved.get_data(as_text=True)).group(1)
        assert cashier_client.post(f"/cashier/payments/{payment_id}/send", headers=HX)
    with capture_statements(db.engine) as poll:
        for seen in ("sending", "pin"):
            row = cashier_client.get(f"/cashier/payments/{payment_id}/row?seen={seen}", headers=HX)
            assert row.status_code == 200
        cashier_client.get(f"/cashier/payments/{failed.id}/row?seen=pin", headers=HX)
    with capture_statements(db.engine) as actions:
        cashier_client.post(f"/cashier/payments/{failed.id}/resend", headers=HX)
        cashier_client.post(f"/cashier/payments/{payment_id}/cancel", headers=HX)

    for name, captured in (("counter", counter), ("send", send), ("poll", poll),
                           ("resend and cancel", actions)):  # fmt: skip
        assert [s for s, _ in captured if "payments" in s], name  # the paths really ran
        problems = _no_scans(captured)
        assert problems == [], f"{name}:\n" + "\n\n".join(problems)
