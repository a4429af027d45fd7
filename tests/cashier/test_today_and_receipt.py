"""Today at this till (totals, server-side search) and the printable receipt."""

from __future__ import annotations

from datetime import timedelta

import pytest
from bs4 import BeautifulSoup

from app.extensions import db
from app.filters import mask_phone
from app.models import User
from app.models.types import utcnow

HX = {"HX-Request": "true"}


def _soup(response) -> BeautifulSoup:
    return BeautifulSoup(response.get_data(as_text=True), "html.parser")


def _row_ids(soup: BeautifulSoup) -> list[str]:
    return [li["id"] for li in soup.select("#payment-rows li.row")]


@pytest.fixture
def day(make_payment):
    """Three sales today, one yesterday, one by another cashier."""
    other = User(username="cashier2", role="cashier", password_hash="x")
    db.session.add(other)
    db.session.commit()
    yesterday = utcnow() - timedelta(days=1, hours=1)
    return {
        "paid": make_payment("paid", amount=150, receipt_number="UAB1CD2EF3"),
        "paid2": make_payment(
            "paid", amount=1500, receipt_number="UAZ9YX8WV7", phone="254711222333"
        ),
        "failed": make_payment("failed", amount=150, result_code="1", phone="254722000111"),
        "open": make_payment("pending", amount=40, phone="254733444555"),
        "old": make_payment("paid", amount=999, receipt_number="UAOLDOLDOL", created_at=yesterday),
        "theirs": make_payment(
            "paid", amount=700, receipt_number="UATHEIRS01", cashier_id=other.id
        ),
    }


def test_totals_count_todays_paid_sales_of_this_cashier(cashier_client, day):
    soup = _soup(cashier_client.get("/cashier/"))
    assert soup.find(id="today-paid-count").get_text() == "2"
    assert soup.find(id="today-paid-kes").get_text() == "KES 1,650"
    assert soup.find(id="today-open").get_text() == "1"
    assert f"payment-{day['old'].id}" not in _row_ids(soup)
    assert f"payment-{day['theirs'].id}" not in _row_ids(soup)
    assert "Today at Test Shop" in soup.find(id="today-title").get_text()


def test_admin_sees_the_whole_till(admin_client, day):
    soup = _soup(admin_client.get("/cashier/"))
    assert soup.find(id="today-paid-count").get_text() == "3"
    assert f"payment-{day['theirs'].id}" in _row_ids(soup)


@pytest.mark.parametrize(
    ("q", "keys"),
    [
        ("uab1cd", ["paid"]),  # part of a receipt number, any case
        ("UAZ9YX8WV7", ["paid2"]),
        ("150", ["failed", "paid"]),  # an amount
        ("KES 1,500", ["paid2"]),
        ("0711 222 333", ["paid2"]),  # a whole phone number, as typed
        ("+254733444555", ["open"]),
        ("111", ["failed"]),  # the last digits the masked number shows
        ("nothing-like-it", []),
    ],
)
def test_search_filters_todays_rows_on_the_server(cashier_client, day, q, keys):
    soup = _soup(cashier_client.get("/cashier/", query_string={"q": q}))
    assert _row_ids(soup) == [f"payment-{day[k].id}" for k in keys]
    assert soup.find(id="q")["value"] == q
    if not keys:
        assert "No payment today matches" in soup.find(id="no-payments").get_text()


def test_the_search_text_is_escaped(cashier_client, day):
    html = cashier_client.get("/cashier/", query_string={"q": "<b>x</b>"}).get_data(as_text=True)
    assert "<b>x</b>" not in html and "&lt;b&gt;x&lt;/b&gt;" in html


def test_search_does_not_probe_the_hidden_middle_digits(cashier_client, day):
    soup = _soup(cashier_client.get("/cashier/", query_string={"q": "2223"}))
    assert _row_ids(soup) == []


def test_htmx_search_returns_only_the_list(cashier_client, day):
    headers = {**HX, "HX-Target": "payment-rows"}
    response = cashier_client.get("/cashier/?q=UAB1", headers=headers)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert html.lstrip().startswith('<ul id="payment-rows"')
    assert "<html" not in html
    assert _row_ids(_soup(response)) == [f"payment-{day['paid'].id}"]
    assert "HX-Request" in response.headers["Vary"]


def test_search_form_works_without_javascript(cashier_client, day):
    soup = _soup(cashier_client.get("/cashier/"))
    form = soup.find(id="search-form")
    assert form["method"] == "get" and form["action"] == "/cashier/"
    assert soup.find("label", attrs={"for": "q"})
    assert soup.find(id="shortcuts").get_text().count("/") >= 1


def test_receipt_has_what_a_thermal_slip_needs(cashier_client, day):
    p = day["paid"]
    p.mpesa_transaction_date = "20261129101531"
    db.session.commit()
    soup = _soup(cashier_client.get(f"/cashier/payments/{p.id}/receipt"))
    slip = soup.find(id=f"receipt-{p.id}")
    text = slip.get_text(" ", strip=True)
    assert "slip-80" in slip["class"]
    assert "Test Shop" in text and "Paybill 174379" in text
    assert "KES 150" in text and "UAB1CD2EF3" in text
    assert "29/11/2026 10:15" in text  # M-Pesa's own time, Africa/Nairobi
    assert "cashier" in text
    assert slip.find(id="slip-phone").get_text() == "2547••••149"
    assert soup.find("button", attrs={"data-print": True})


def test_receipt_without_transaction_date_uses_nairobi_time(cashier_client, make_payment):
    from datetime import UTC, datetime

    final = datetime(2026, 11, 29, 21, 30, tzinfo=UTC)  # 00:30 next day in Nairobi
    p = make_payment("paid", receipt_number="UAT5555555", final_at=final)
    text = _soup(cashier_client.get(f"/cashier/payments/{p.id}/receipt")).get_text(" ")
    assert "30/11/2026 00:30" in text


def test_receipt_for_58mm_and_a_buy_goods_till(cashier_client, day, till):
    till.till_type, till.till_number = "till", "5512345"
    db.session.commit()
    soup = _soup(cashier_client.get(f"/cashier/payments/{day['paid'].id}/receipt?width=58"))
    slip = soup.select_one(".slip")
    assert "slip-58" in slip["class"]
    assert "Till number 5512345" in slip.get_text(" ")
    assert "Account" not in slip.get_text(" ")


def test_receipt_print_css_hides_the_screen_chrome(client):
    with client.get("/static/app.css") as response:
        css = response.get_data(as_text=True)
    assert "@media print" in css and ".top,.no-print" in css
    assert ".slip-58{width:48mm}" in css and ".slip-80{width:72mm}" in css


def test_receipt_only_for_paid_and_own_sales(app, cashier_client, owner_client, day):
    assert cashier_client.get(f"/cashier/payments/{day['failed'].id}/receipt").status_code == 404
    assert cashier_client.get(f"/cashier/payments/{day['theirs'].id}/receipt").status_code == 403
    owner_view = owner_client.get(f"/cashier/payments/{day['theirs'].id}/receipt")
    assert owner_view.status_code == 200
    assert "2547••••149" in owner_view.get_data(as_text=True)  # a receipt is always masked


def test_paid_rows_link_to_their_receipt(cashier_client, day):
    soup = _soup(cashier_client.get("/cashier/"))
    link = soup.select_one(f"#payment-{day['paid'].id} .actions a")
    assert link["href"] == f"/cashier/payments/{day['paid'].id}/receipt"
    assert soup.select_one(f"#payment-{day['failed'].id} .actions a") is None


@pytest.mark.parametrize(
    ("msisdn", "masked"),
    [
        ("254708374149", "2547••••149"),
        ("254112345678", "2541••••678"),
        ("", ""),
        (None, ""),
        ("12345", "••••"),
    ],
)
def test_mask_phone_keeps_the_first_four_and_last_three(msisdn, masked):
    assert mask_phone(msisdn) == masked
