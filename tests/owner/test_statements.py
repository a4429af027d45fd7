"""Statement upload and reconciliation through the owner's pages, on both databases."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa
from bs4 import BeautifulSoup

from app.extensions import db
from app.models import AuditEntry, CallbackOutcome, Payment, PaymentEvent, RawCallback
from app.models.statement import StatementEntry, StatementUpload
from app.timeutil import NAIROBI

D = date(2026, 11, 20)
HEADER = (
    "Receipt No.,Completion Time,Initiation Time,Details,Transaction Status,Paid In,Withdrawn,"
    "Balance,Balance Confirmed,Reason Type,Other Party Info,Linked Transaction ID,A/C No."
)


def nbo(hour: int, minute: int = 0) -> datetime:
    return datetime(D.year, D.month, D.day, hour, minute, tzinfo=NAIROBI).astimezone(UTC)


def line(receipt: str, hhmm: str, amount: str, phone: str = "2547****111") -> str:
    return (
        f'{receipt},2026-11-20 {hhmm}:00,,Pay Bill Online,Completed,"{amount}",,"9,999.00",true,'
        f"Pay Bill Online,{phone} - JANE,,Sale"
    )


def statement(*lines: str, code: str = "174379") -> bytes:
    preamble = (
        f"Organization Name:,DEMO SHOP\nTime Period:,20-11-2026 - 20-11-2026\nPaybill,{code}\n"
    )
    return (preamble + HEADER + "\n" + "\n".join(lines) + "\n").encode()


def upload(client, till, data: bytes, name: str = "statement.csv"):
    return client.post(
        f"/owner/statements?till={till.id}&from={D}&to={D}",
        data={"statement": (io.BytesIO(data), name)},
        content_type="multipart/form-data",
    )


@pytest.fixture
def sales(make_payment):
    return {
        "matched": make_payment(
            status="paid", amount=500, created_at=nbo(9), final_at=nbo(9, 1),
            receipt_number="QKA0000001", phone="254712000111",
        ),
        "pending_receipt": make_payment(
            status="paid", amount=250, created_at=nbo(10), final_at=nbo(10, 1),
            phone="254712000111",
        ),
        "missing": make_payment(
            status="paid", amount=700, created_at=nbo(11), final_at=nbo(11, 1),
            receipt_number="QKA0000003", phone="254712000111",
        ),
        "unknown": make_payment(
            status="unknown", amount=900, created_at=nbo(12), phone="254712000111", checkout=None
        ),
    }  # fmt: skip


def test_upload_matches_fills_receipts_and_raises_the_alarm(owner_client, till, sales):
    data = statement(
        line("QKA0000001", "09:01", "500.00"),
        line("QKB0000002", "10:01", "250.00"),  # the sale whose receipt was pending
        line("QKC0000004", "12:01", "900.00"),  # the unknown push: money did arrive
        line("QKD0000005", "13:00", "50.00"),  # paid straight to the till
    )
    r = upload(owner_client, till, data)
    assert r.status_code == 302
    pending = db.session.get(Payment, sales["pending_receipt"].id, populate_existing=True)
    assert pending.receipt_number == "QKB0000002"
    event = db.session.execute(
        sa.select(PaymentEvent).where(PaymentEvent.payment_id == pending.id)
    ).scalar_one()
    assert (event.source, event.kind) == ("statement", "receipt_attached")
    page = owner_client.get(f"/owner/statements?till={till.id}&from={D}&to={D}")
    soup = BeautifulSoup(page.data, "html.parser")
    assert soup.select_one(f"#alarm-{sales['missing'].id}") is not None  # paid here, not there
    assert soup.select_one(f"#alarm-{sales['matched'].id}") is None
    rows = soup.select("#statement-only tbody tr")
    assert len(rows) == 2
    unknown_line = db.session.execute(
        sa.select(StatementEntry).where(StatementEntry.receipt == "QKC0000004")
    ).scalar_one()
    suggested = soup.select_one(f"#attach-{unknown_line.id}")
    assert suggested["value"] == str(sales["unknown"].id)
    audit = db.session.execute(
        sa.select(AuditEntry).where(AuditEntry.action == "statement.uploaded")
    ).scalar_one()
    assert audit.detail["receipts_filled"] == 1 and audit.detail["new_lines"] == 4


def test_the_same_file_twice_or_overlapping_files_change_nothing(owner_client, till, sales):
    first = statement(line("QKA0000001", "09:01", "500.00"), line("QKB0000002", "10:01", "250.00"))
    assert upload(owner_client, till, first).status_code == 302
    assert upload(owner_client, till, first).status_code == 302
    overlap = statement(line("QKB0000002", "10:01", "250.00"), line("QKE0000006", "14:00", "5.00"))
    assert upload(owner_client, till, overlap).status_code == 302
    receipts = db.session.execute(sa.select(StatementEntry.receipt)).scalars().all()
    assert sorted(receipts) == ["QKA0000001", "QKB0000002", "QKE0000006"]
    assert (
        db.session.execute(sa.select(sa.func.count()).select_from(StatementUpload)).scalar_one()
        == 2
    )
    events = db.session.execute(
        sa.select(sa.func.count()).where(PaymentEvent.source == "statement")
    ).scalar_one()
    assert events == 1  # the receipt was filled once


def test_attaching_a_line_makes_the_unknown_sale_paid(owner_client, till, sales):
    upload(owner_client, till, statement(line("QKC0000004", "12:01", "900.00")))
    entry = db.session.execute(sa.select(StatementEntry)).scalar_one()
    r = owner_client.post(
        f"/owner/statements/lines/{entry.id}/attach", data={"payment_id": str(sales["unknown"].id)}
    )
    assert r.status_code == 302
    sale = db.session.get(Payment, sales["unknown"].id, populate_existing=True)
    assert (sale.status, sale.receipt_number) == ("paid", "QKC0000004")
    sources = (
        db.session.execute(sa.select(PaymentEvent.source).where(PaymentEvent.payment_id == sale.id))
        .scalars()
        .all()
    )
    assert sources == ["statement"]


def test_attaching_to_a_sale_of_another_amount_is_refused(owner_client, till, sales):
    upload(owner_client, till, statement(line("QKC0000004", "12:01", "901.00")))
    entry = db.session.execute(sa.select(StatementEntry)).scalar_one()
    owner_client.post(
        f"/owner/statements/lines/{entry.id}/attach", data={"payment_id": str(sales["unknown"].id)}
    )
    assert db.session.get(Payment, sales["unknown"].id, populate_existing=True).status == "unknown"
    assert "The amounts differ" in owner_client.get(f"/owner/statements?till={till.id}").get_data(
        as_text=True
    )


def test_a_line_can_confirm_an_orphan_or_be_marked_outside(owner_client, till, sales):
    raw = RawCallback(
        till_id=till.id, body=b"{}", outcome=CallbackOutcome.ORPHAN, result_code="0", amount=60,
        receipt_number="QKF0000007", phone="254712000111", received_at=nbo(15),
    )  # fmt: skip
    db.session.add(raw)
    db.session.commit()
    upload(
        owner_client,
        till,
        statement(line("QKF0000007", "15:00", "60.00"), line("QKD0000005", "13:00", "50.00")),
    )
    entries = {e.receipt: e for e in db.session.execute(sa.select(StatementEntry)).scalars()}
    r = owner_client.post(f"/owner/statements/lines/{entries['QKF0000007'].id}/orphan/{raw.id}")
    assert r.status_code == 302
    accepted = db.session.execute(
        sa.select(Payment).where(Payment.receipt_number == "QKF0000007")
    ).scalar_one()
    assert accepted.status == "paid" and accepted.amount_kes == 60
    owner_client.post(f"/owner/statements/lines/{entries['QKD0000005'].id}/outside")
    db.session.expire_all()
    assert db.session.get(StatementEntry, entries["QKD0000005"].id).decision == "outside"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x00\x01\x02 not a statement", "not a CSV statement"),
        (b"a,b,c\n1,2,3\n", "Receipt No."),
        (statement(line("QKA0000001", "09:01", "5x0.00")), "is not a number"),
        (statement('QKA0000001,yesterday,,Pay,Completed,"1.00",,,,,,,'), "is not a date"),
        (statement(line("QKA0000001", "09:01", "500.00"), code="556677"), "not for this till"),
        (statement(line("QKA0000001", "09:01", "500.00") + ",extra,cells,here"), "Line 5"),
    ],
)
def test_a_broken_statement_is_refused_whole_naming_the_line(owner_client, till, data, message):
    r = upload(owner_client, till, data)
    assert r.status_code == 422
    error = BeautifulSoup(r.data, "html.parser").select_one("#statement-error")
    assert error is not None and message in error.get_text()
    assert (
        db.session.execute(sa.select(sa.func.count()).select_from(StatementEntry)).scalar_one() == 0
    )
    assert (
        db.session.execute(sa.select(sa.func.count()).select_from(StatementUpload)).scalar_one()
        == 0
    )


def test_a_50_mb_file_is_refused_with_its_size(owner_client, till):
    # A raw body (not built by the test client's multipart encoder, which spools a file of
    # this size to a temporary file the refused request never reads or closes).
    body = b'--b\r\nContent-Disposition: form-data; name="statement"; filename="s.csv"\r\n\r\n'
    r = owner_client.post(
        f"/owner/statements?till={till.id}",
        data=body + b"x" * (50 * 1024 * 1024) + b"\r\n--b--\r\n",
        content_type="multipart/form-data; boundary=b",
    )
    assert r.status_code == 413
    error = BeautifulSoup(r.data, "html.parser").select_one("#statement-error")
    assert "50.0 MB" in error.get_text() and "20 MB" in error.get_text()


def test_cashiers_cannot_upload(client, till):
    from tests.helpers import login

    login(client, "cashier")
    assert upload(client, till, statement()).status_code == 403


def test_a_paid_sale_missing_from_the_statement_is_flagged_in_the_list(owner_client, till, sales):
    from app.reports import listing
    from app.reports.periods import Period

    upload(owner_client, till, statement(line("QKA0000001", "09:01", "500.00")))
    flagged = listing.read_filters({"flag": "not_on_statement"}, Period(D, D))
    ids = {p.id for p in listing.page(flagged, size=100).payments}
    # Paid here on a covered day and absent: the one with a receipt and the one without.
    assert ids == {sales["missing"].id, sales["pending_receipt"].id}
    html = owner_client.get(f"/owner/payments?from={D}&to={D}").get_data(as_text=True)
    row = BeautifulSoup(html, "html.parser").select_one(f"#payment-{sales['missing'].id}")
    assert "not on statement" in row.get_text()


def test_a_fee_line_with_the_payments_receipt_is_not_a_second_line(owner_client, till, sales):
    fee = (
        "QKA0000001,2026-11-20 09:01:00,,Business Pay Bill Charge,Completed,,-5.00,,true,"
        "Business Pay Bill Charge,,,"
    )
    assert (
        upload(
            owner_client, till, statement(line("QKA0000001", "09:01", "500.00"), fee)
        ).status_code
        == 302
    )
    rows = db.session.execute(sa.select(StatementEntry.receipt, StatementEntry.paid_in_cents)).all()
    assert [tuple(r) for r in rows] == [("QKA0000001", 50000)]
