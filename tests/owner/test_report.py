"""The owner's day report: Nairobi days, totals of paid payments, the list, an empty day."""

from datetime import UTC, date, datetime

import sqlalchemy as sa
from bs4 import BeautifulSoup

from app.extensions import db
from app.models import Payment


def _at(payment, when):
    db.session.execute(sa.update(Payment).where(Payment.id == payment.id).values(created_at=when))
    db.session.commit()


def test_day_is_a_nairobi_day_and_totals_count_paid_only(owner_client, make_payment):
    # 21:30 UTC on 1 March is 00:30 on 2 March in Nairobi.
    late = make_payment(status="paid", amount=500, receipt_number="RCPT00001A")
    _at(late, datetime(2026, 3, 1, 21, 30, tzinfo=UTC))
    early = make_payment(status="paid", amount=250, receipt_number="RCPT00002B")
    _at(early, datetime(2026, 3, 2, 6, 0, tzinfo=UTC))
    failed = make_payment(status="failed", amount=999, result_code="1032")
    _at(failed, datetime(2026, 3, 2, 7, 0, tzinfo=UTC))
    previous_day = make_payment(status="paid", amount=70, receipt_number="RCPT00003C")
    _at(previous_day, datetime(2026, 3, 1, 20, 59, tzinfo=UTC))  # 23:59 on 1 March in Nairobi

    soup = BeautifulSoup(owner_client.get("/owner/report?date=2026-03-02").data, "html.parser")
    assert soup.select_one("#paid-count").text.strip() == "2"
    assert soup.select_one("#paid-kes").text.strip() == "KES 750"
    rows = soup.select("#receipts tbody tr")
    assert [r["id"] for r in rows] == [
        f"receipt-{failed.id}",
        f"receipt-{early.id}",
        f"receipt-{late.id}",
    ]
    first_paid = soup.select_one(f"#receipt-{late.id}")
    cells = [td.get_text(" ", strip=True) for td in first_paid.find_all("td")]
    assert cells[0] == "00:30:00"  # shown in Nairobi time
    assert cells[1] == "254708374149"  # owners see the full number
    assert cells[2] == "KES 500" and cells[3] == "RCPT00001A"
    assert cells[4] == late.till.name  # which till took it (one install, several tills)
    assert cells[5] == "cashier" and "Paid" in cells[6]


def test_empty_day_says_so(owner_client):
    html = owner_client.get("/owner/report?date=2020-01-01").get_data(as_text=True)
    assert 'id="empty-day"' in html and "No payments on this day" in html
    assert 'id="receipts"' not in html


def test_default_is_today_in_nairobi(owner_client):
    from app.timeutil import today_nairobi

    soup = BeautifulSoup(owner_client.get("/owner/report").data, "html.parser")
    assert soup.select_one("#date")["value"] == today_nairobi().isoformat()


def test_bad_date_falls_back_to_today(owner_client):
    r = owner_client.get("/owner/report?date=not-a-date")
    assert r.status_code == 200 and b"not a date" in r.data


def test_paid_without_receipt_says_receipt_pending(owner_client, make_payment):
    from app.timeutil import today_nairobi

    make_payment(status="paid", amount=10)
    html = owner_client.get(f"/owner/report?date={today_nairobi().isoformat()}").get_data(
        as_text=True
    )
    assert "receipt pending" in html


def test_nairobi_bounds():
    from app.timeutil import nairobi_day_bounds

    start, end = nairobi_day_bounds(date(2026, 3, 2))
    assert start == datetime(2026, 3, 1, 21, 0, tzinfo=UTC)
    assert end == datetime(2026, 3, 2, 21, 0, tzinfo=UTC)


def test_paid_rows_link_to_their_printable_receipt(owner_client, make_payment):
    from app.timeutil import today_nairobi

    p = make_payment(status="paid", amount=10, receipt_number="LINK000001")
    soup = BeautifulSoup(
        owner_client.get(f"/owner/report?date={today_nairobi().isoformat()}").data, "html.parser"
    )
    link = soup.select_one(f"#receipt-{p.id} a[href$='/receipt']")
    assert link.text == "LINK000001"
    assert owner_client.get(link["href"]).status_code == 200


def test_report_flags_conflicts_and_paid_after_cancel(owner_client, client, till, make_payment):
    from app.models import User
    from app.payments.service import cancel_locally
    from tests.helpers import failure_callback, post_json, success_callback

    url = f"/cb/stk/{till.callback_token}"
    contradicted = make_payment(amount=150)
    post_json(client, url, success_callback(contradicted.checkout_request_id, receipt="CONF123456"))
    post_json(client, url, failure_callback(contradicted.checkout_request_id, 1032))
    cancelled = make_payment(amount=200)
    cancel_locally(cancelled, db.session.execute(sa.select(User)).scalars().first())
    post_json(client, url, success_callback(cancelled.checkout_request_id, amount=200,
                                            receipt="LATE123456"))  # fmt: skip
    plain = make_payment(amount=300)
    soup = BeautifulSoup(owner_client.get("/owner/report").data, "html.parser")

    def flags(p):
        return [f.text for f in soup.select(f"#receipt-{p.id} .flag")]

    assert flags(contradicted) == ["conflict"]
    assert flags(cancelled) == ["paid after cancel"]
    assert flags(plain) == []
