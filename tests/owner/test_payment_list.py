"""Every payment findable: filters, keyset pages, and the streamed CSV export."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from bs4 import BeautifulSoup

from app.extensions import db
from app.models import PaymentEvent
from app.reports import listing
from app.reports.flags import Flag, flags_for
from app.reports.periods import Period
from app.timeutil import NAIROBI

D = date(2026, 11, 20)
ALL = Period(D, D)


def nbo(hour: int, minute: int = 0) -> datetime:
    return datetime(D.year, D.month, D.day, hour, minute, tzinfo=NAIROBI).astimezone(UTC)


@pytest.fixture
def sales(make_payment):
    """A day of varied sales; returns them by name."""
    made = {
        "paid": make_payment(
            status="paid", amount=1500, created_at=nbo(9), final_at=nbo(9, 1),
            receipt_number="QKA1B2C3D4", phone="254712000111", account_reference="INV-7",
        ),
        "pending_receipt": make_payment(
            status="paid", amount=99, created_at=nbo(10), final_at=nbo(10, 1), phone="254712000222"
        ),
        "failed": make_payment(
            status="failed", amount=300, created_at=nbo(11), final_at=nbo(11, 1),
            result_code="1032", phone="254733000333",
        ),
        "unknown": make_payment(status="unknown", amount=40, created_at=nbo(12)),
        "formula": make_payment(
            status="paid", amount=10, created_at=nbo(13), final_at=nbo(13),
            receipt_number="QKZZZZZZZ9", account_reference="=HYPERLINK()",
        ),
    }  # fmt: skip
    return made


def ids(f: listing.Filters) -> set[int]:
    return {p.id for p in listing.page(f, size=1000).payments}


def test_every_filter_narrows_the_list(app, sales):
    base = listing.Filters(ALL)
    assert ids(base) == {p.id for p in sales.values()}
    assert ids(listing.read_filters({"status": "open"}, ALL)) == {sales["unknown"].id}
    assert ids(listing.read_filters({"status": "failed"}, ALL)) == {sales["failed"].id}
    assert ids(listing.read_filters({"amount_min": "100", "amount_max": "1,500"}, ALL)) == {
        sales["paid"].id,
        sales["failed"].id,
    }
    assert ids(listing.read_filters({"phone": "0712 000 111"}, ALL)) == {sales["paid"].id}
    assert ids(listing.read_filters({"phone": "333"}, ALL)) == {sales["failed"].id}
    assert ids(listing.read_filters({"receipt": "qka1b2c3d4"}, ALL)) == {sales["paid"].id}
    assert ids(listing.read_filters({"reference": "inv-7"}, ALL)) == {sales["paid"].id}
    assert ids(listing.read_filters({"q": "INV-7"}, ALL)) == {sales["paid"].id}
    assert ids(listing.read_filters({"q": "QKA1B2"}, ALL)) == {sales["paid"].id}
    assert ids(listing.read_filters({"q": "300"}, ALL)) == {sales["failed"].id}
    assert ids(listing.read_filters({"q": "gibberish!"}, ALL)) == set()
    # Values it cannot read are ignored, never fatal.
    assert ids(listing.read_filters({"status": "nope", "amount_min": "x", "till": "-1"}, ALL)) == (
        ids(base)
    )
    assert ids(listing.Filters(Period(D + timedelta(days=1), D + timedelta(days=1)))) == set()


def test_flag_filters_agree_with_the_flags_shown(app, sales):
    p = sales["failed"]
    db.session.add(
        PaymentEvent(
            payment_id=p.id, source="callback", kind="success", from_status="failed",
            to_status="failed", conflict=True, idem_key=uuid.uuid4().hex,
        )
    )  # fmt: skip
    db.session.commit()
    every = listing.page(listing.Filters(ALL), size=1000).payments
    shown = flags_for(every)
    for flag in Flag:
        expected = {i for i, fl in shown.items() if flag in fl}
        assert ids(listing.read_filters({"flag": flag.value}, ALL)) == expected, flag
    assert ids(listing.read_filters({"flag": "conflict"}, ALL)) == {p.id}
    assert sales["pending_receipt"].id in ids(
        listing.read_filters({"flag": "receipt_pending"}, ALL)
    )


def test_keyset_pages_walk_every_row_once(app, make_payment):
    same_instant = nbo(15)
    made = [
        make_payment(
            status="failed", amount=10 + i, created_at=same_instant if i < 4 else nbo(9, i)
        )
        for i in range(11)
    ]
    seen, cursor, pages = [], None, 0
    while True:
        page = listing.page(listing.Filters(ALL), cursor, size=3)
        seen += [p.id for p in page.payments]
        pages += 1
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert sorted(seen) == sorted(p.id for p in made) and len(seen) == len(set(seen))
    assert pages == 4
    newest_first = [(p.created_at, p.id) for p in made]
    assert seen == [i for _, i in sorted(newest_first, reverse=True)]


@pytest.mark.parametrize("cursor", ["", "garbage", "!!!", "MjAyNi0xMS0yMA", "x" * 500])
def test_a_bad_cursor_gives_the_first_page(app, sales, cursor):
    first = listing.page(listing.Filters(ALL), None, size=2).payments
    assert listing.page(listing.Filters(ALL), cursor, size=2).payments == first


def test_the_page_shows_rows_as_labelled_cards_and_links_the_next_page(owner_client, sales):
    html = owner_client.get(f"/owner/payments?from={D}&to={D}").get_data(as_text=True)
    soup = BeautifulSoup(html, "html.parser")
    rows = soup.select("#payments tbody tr")
    assert len(rows) == len(sales)
    assert all(td.get("data-label") for td in rows[0].find_all("td"))
    assert "254712000111" in html  # owners see full numbers
    paid_row = soup.select_one(f"#payment-{sales['paid'].id}")
    assert paid_row.select_one("a")["href"] == f"/owner/payments/{sales['paid'].id}"
    assert soup.select_one("#next-page") is None


def test_csv_is_excel_ready_nairobi_timed_and_formula_safe(owner_client, sales):
    response = owner_client.get(f"/owner/payments.csv?from={D}&to={D}")
    assert response.status_code == 200 and response.is_streamed
    assert response.mimetype == "text/csv"
    assert (
        'filename="pesadesk-payments-2026-11-20-to-2026-11-20.csv"'
        in response.headers["Content-Disposition"]
    )
    text = response.get_data(as_text=True)
    assert text.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
    assert [r["payment_id"] for r in rows] == [
        str(p.id) for p in sorted(sales.values(), key=lambda p: p.created_at, reverse=True)
    ]
    paid = next(r for r in rows if r["payment_id"] == str(sales["paid"].id))
    assert paid["started_nairobi"] == "2026-11-20 09:00:00"
    assert paid["paid_nairobi"] == "2026-11-20 09:01:00"
    assert paid["amount_kes"] == "1500" and paid["receipt"] == "QKA1B2C3D4"
    formula = next(r for r in rows if r["payment_id"] == str(sales["formula"].id))
    assert formula["reference"] == "'=HYPERLINK()"
    pending = next(r for r in rows if r["payment_id"] == str(sales["pending_receipt"].id))
    assert pending["flags"] == "receipt_pending"


def test_csv_export_walks_past_one_batch(app, owner_client, make_payment, monkeypatch):
    monkeypatch.setattr(listing, "EXPORT_BATCH", 3)
    for i in range(8):
        make_payment(status="failed", amount=10 + i, created_at=nbo(8, i))
    text = owner_client.get(f"/owner/payments.csv?from={D}&to={D}").get_data(as_text=True)
    rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
    assert sorted(int(r["amount_kes"]) for r in rows) == list(range(10, 18))


def test_day_csv_has_a_line_per_day(owner_client, sales):
    text = owner_client.get(f"/owner/takings.csv?from={D - timedelta(days=1)}&to={D}").get_data(
        as_text=True
    )
    rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
    assert [r["day"] for r in rows] == [str(D - timedelta(days=1)), str(D)]
    assert rows[1]["paid_kes"] == str(1500 + 99 + 10) and rows[1]["failed"] == "1"
    assert rows[0]["paid_kes"] == "0"
