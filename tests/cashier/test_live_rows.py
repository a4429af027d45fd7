"""The live row: phase, countdown, polling pace, announcements, 286, and what each viewer sees."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from bs4 import BeautifulSoup

from app.models.types import utcnow

HX = {"HX-Request": "true"}


def _row(client, payment_id: int, seen: str | None = None):
    url = f"/cashier/payments/{payment_id}/row" + (f"?seen={seen}" if seen else "")
    response = client.get(url, headers=HX)
    return response, BeautifulSoup(response.get_data(as_text=True), "html.parser")


def test_a_fresh_prompt_counts_down_the_pin_and_polls_fast(cashier_client, make_payment):
    p = make_payment("pending", pushed_at=utcnow() - timedelta(seconds=15))
    response, soup = _row(cashier_client, p.id)
    li = soup.find("li", id=f"payment-{p.id}")
    assert response.status_code == 200
    assert li["data-phase"] == "pin"
    assert li["hx-trigger"] == "every 1500ms"
    assert li["hx-get"].endswith("?seen=pin")
    left = int(li.select_one(".pin-countdown [data-seconds]")["data-seconds"])
    assert 44 <= left <= 46
    assert li.select_one(".pin-countdown")["data-countdown"] == "swap"
    assert li.select_one(".after").has_attr("hidden")  # "still waiting" once the count ends
    assert li.select_one(".badge").get_text() == "Waiting for PIN"
    assert li.select_one(".cancel-form button").get_text().strip() == "Cancel here"
    assert li.select_one(".resend-form") is None


def test_after_the_pin_window_the_row_says_still_waiting_and_slows_down(
    cashier_client, make_payment
):
    p = make_payment("pending", pushed_at=utcnow() - timedelta(seconds=75))
    response, soup = _row(cashier_client, p.id)
    li = soup.li
    assert response.status_code == 200
    assert li["data-phase"] == "waiting"
    assert li["hx-trigger"] == "every 3s"
    assert li.select_one(".pin-countdown") is None
    assert li.select_one(".msg").get_text() == "Still waiting for M-PESA…"


@pytest.mark.parametrize("status", ["unconfirmed", "unknown"])
def test_unconfirmed_and_unknown_keep_polling_slowly(cashier_client, make_payment, status):
    p = make_payment(status, pushed_at=utcnow() - timedelta(minutes=5))
    response, soup = _row(cashier_client, p.id)
    li = soup.li
    assert response.status_code == 200  # not 286: the poller may still learn the answer
    assert li["hx-trigger"] == "every 5s"
    if status == "unconfirmed":
        expected = "Unconfirmed — money may have moved; checking automatically."
        assert li.select_one(".msg").get_text() == expected
    else:
        assert "do not send twice" in li.select_one(".msg").get_text()
    assert li.select_one(".resend-form") is None  # money may have moved: never resend


@pytest.mark.parametrize(
    ("status", "extra"),
    [
        ("paid", {"receipt_number": "UAT1234567"}),
        ("failed", {"result_code": "1032", "result_desc": "Request cancelled by user."}),
        ("rejected", {"push_error_code": "DarajaSystemBusy"}),
    ],
)
def test_a_final_row_stops_polling_with_286(cashier_client, make_payment, status, extra):
    p = make_payment(status, **extra)
    response, soup = _row(cashier_client, p.id)
    assert response.status_code == 286
    assert not soup.li.has_attr("hx-trigger")
    assert soup.li["data-status"] == status
    assert "HX-Request" in response.headers["Vary"]


def test_a_changed_phase_is_announced_and_refreshes_the_totals(cashier_client, make_payment):
    p = make_payment("paid", amount=250, receipt_number="UAT7654321")
    response, soup = _row(cashier_client, p.id, seen="pin")
    announcement = soup.find(id="announcement")
    assert announcement["hx-swap-oob"] == "innerHTML:#announcer"
    assert "KES 250" in announcement.get_text() and "Paid" in announcement.get_text()
    assert "2547••••149" in announcement.get_text()
    # The totals are told to refresh themselves (their own request, not this poll's work).
    assert response.headers["HX-Trigger"] == "totals-changed"
    assert soup.find(id="today-totals") is None
    refreshed = cashier_client.get("/cashier/totals", headers={"HX-Request": "true"})
    totals = BeautifulSoup(refreshed.data, "html.parser").find(id="today-totals")
    assert totals["hx-trigger"] == "totals-changed from:body"
    assert totals.find(id="today-paid-count").get_text() == "1"
    assert totals.find(id="today-paid-kes").get_text() == "KES 250"


def test_an_unchanged_phase_is_not_announced_again(cashier_client, make_payment):
    p = make_payment("pending")
    _, soup = _row(cashier_client, p.id, seen="pin")
    assert soup.find(id="announcement") is None
    assert soup.find(id="today-totals") is None
    assert len(soup.find_all(recursive=False)) == 1  # one root: the row


def test_the_row_without_htmx_goes_to_the_page(cashier_client, make_payment):
    p = make_payment("pending")
    response = cashier_client.get(f"/cashier/payments/{p.id}/row")
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/cashier/#payment-{p.id}")


def test_cashiers_see_masked_phones_and_no_raw_result_desc(cashier_client, make_payment):
    make_payment("failed", result_code="2001", result_desc="The initiator information is invalid.")
    html = cashier_client.get("/cashier/").get_data(as_text=True)
    assert "2547••••149" in html
    assert "254708374149" not in html and "0708 374 149" not in html
    assert "Wrong PIN entered. Resend and ask customer to retry carefully." in html
    assert "The initiator information is invalid." not in html


def test_admins_see_full_phones_and_safaricoms_own_words(admin_client, make_payment):
    make_payment("failed", result_code="2001", result_desc="The initiator information is invalid.")
    soup = BeautifulSoup(admin_client.get("/cashier/").get_data(as_text=True), "html.parser")
    row = soup.select_one("li.row")
    assert row.select_one(".phone").get_text() == "0708 374 149"
    assert row.select_one(".raw").get_text() == "M-PESA 2001: The initiator information is invalid."


def test_a_refused_push_shows_daraja_s_message_to_supervisors_only(
    admin_client, cashier_client, make_payment
):
    make_payment(
        "rejected",
        push_error_code="DarajaWrongCredentials",
        push_error_message="500.001.1001 [MerchantValidate] - Wrong credentials",
    )
    cashier_html = cashier_client.get("/cashier/").get_data(as_text=True)
    assert "passkey or shortcode is wrong" in cashier_html
    assert "MerchantValidate" not in cashier_html
    assert "[MerchantValidate] - Wrong credentials" in admin_client.get("/cashier/").get_data(
        as_text=True
    )


def test_paid_after_cancel_is_an_alert_not_hidden(cashier_client, make_payment):
    p = make_payment("paid", receipt_number="UAT2222222", cancelled_at=utcnow())
    response, soup = _row(cashier_client, p.id, seen="cancelled")
    li = soup.find("li", id=f"payment-{p.id}")
    assert response.status_code == 286
    assert li["data-phase"] == "paid_after_cancel"
    assert "Paid after cancel" in li.select_one("[role=alert]").get_text()
    assert li.select_one(".badge").get_text() == "Paid after cancel"
    assert "Paid after cancel" in soup.find(id="announcement").get_text()


def test_a_cancelled_open_row_keeps_watching_for_a_late_payment(cashier_client, make_payment):
    p = make_payment("pending", cancelled_at=utcnow())
    response, soup = _row(cashier_client, p.id)
    li = soup.li
    assert response.status_code == 200
    assert li["data-phase"] == "cancelled"
    assert li.has_attr("hx-trigger")
    assert li.select_one(".badge").get_text() == "Cancelled here"
    assert re.search(r"if the customer still pays, this row will say so", li.get_text())
    assert li.select_one(".cancel-form") is None
