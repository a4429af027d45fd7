"""Resend (a new attempt for the same sale) and cancel-here, as htmx actions and as plain forms."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from bs4 import BeautifulSoup

from app.extensions import db
from app.models import Payment, PaymentEvent, User
from app.models.types import utcnow

HX = {"HX-Request": "true"}


def _payments() -> list[Payment]:
    db.session.expire_all()
    return list(db.session.execute(sa.select(Payment).order_by(Payment.id)).scalars())


def _soup(response) -> BeautifulSoup:
    return BeautifulSoup(response.get_data(as_text=True), "html.parser")


def _old_failure(make_payment, **kw) -> Payment:
    """A cancelled-on-the-phone attempt, long enough ago that M-Pesa accepts a new one."""
    past = utcnow() - timedelta(minutes=3)
    return make_payment(
        "failed",
        result_code="1032",
        result_desc="Request cancelled by user.",
        pushed_at=past,
        final_at=past,
        created_at=past,
        next_query_at=None,
        **kw,
    )


def test_resend_creates_a_linked_attempt_and_prepends_its_row(
    live_app, cashier_client, make_payment
):
    original = _old_failure(make_payment)
    response = cashier_client.post(f"/cashier/payments/{original.id}/resend", headers=HX)
    assert response.status_code == 200
    first, second = _payments()
    assert second.resend_of_id == first.id
    assert second.sale_ref == first.sale_ref
    assert second.status == "initiating" and second.amount_kes == first.amount_kes
    soup = _soup(response)
    old_row = soup.find("li", id=f"payment-{first.id}")
    assert "Sent again" in old_row.get_text()
    assert old_row.select_one(".resend-form") is None  # one resend per attempt
    new_row = soup.find(id=f"new-row-{second.id}")
    assert new_row["hx-swap-oob"] == "afterbegin:#payment-rows"
    # Saved at once; the new row sends its own push (like a new sale).
    assert new_row.find("li", id=f"payment-{second.id}")["data-phase"] == "sending"
    assert new_row.select_one(".send-form")
    assert "Sending" in soup.find(id="announcement").get_text()
    sent = _soup(cashier_client.post(f"/cashier/payments/{second.id}/send", headers=HX))
    assert sent.find("li", id=f"payment-{second.id}")["data-phase"] == "pin"


def test_resend_twice_is_still_one_new_attempt(live_app, cashier_client, make_payment):
    original = _old_failure(make_payment)
    cashier_client.post(f"/cashier/payments/{original.id}/resend", headers=HX)
    again = cashier_client.post(f"/cashier/payments/{original.id}/resend", headers=HX)
    assert again.status_code == 200
    assert len(_payments()) == 2
    assert _soup(again).find(id="announcement") is None  # nothing new to announce


def test_resend_without_javascript_redirects_to_the_new_row(live_app, cashier_client, make_payment):
    original = _old_failure(make_payment)
    response = cashier_client.post(f"/cashier/payments/{original.id}/resend")
    new = _payments()[-1]
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/cashier/#payment-{new.id}")
    assert new.resend_of_id == original.id


def test_resend_inside_the_same_amount_window_is_refused_with_a_countdown(
    cashier_client, make_payment
):
    pushed = utcnow() - timedelta(seconds=30)
    original = make_payment("failed", result_code="2001", pushed_at=pushed, final_at=pushed)
    row = _soup(cashier_client.get("/cashier/")).find("li", id=f"payment-{original.id}")
    button = row.select_one(".resend-form button")
    assert button.has_attr("disabled") and button["data-countdown"] == "enable"
    assert 88 <= int(button.select_one("[data-seconds]")["data-seconds"]) <= 90
    assert "same amount to the same phone" in row.select_one(".wait-note").get_text()

    # The disabled button is only a hint: the server refuses too, and says when.
    response = cashier_client.post(f"/cashier/payments/{original.id}/resend", headers=HX)
    soup = _soup(response)
    error = soup.select_one("li [role=alert]")
    assert response.status_code == 200
    assert "Try again in" in error.get_text()
    assert 88 <= int(error.select_one("[data-seconds]")["data-seconds"]) <= 90
    assert len(_payments()) == 1


def test_the_wait_also_follows_the_result_codes_advice(cashier_client, make_payment):
    # 1001 (another M-PESA session open) advises 60 s, whatever our own guards say.
    done = utcnow() - timedelta(seconds=20)
    p = make_payment(
        "failed",
        result_code="1001",
        amount=77,
        pushed_at=done - timedelta(minutes=3),
        final_at=done,
    )
    row = _soup(cashier_client.get("/cashier/")).find("li", id=f"payment-{p.id}")
    seconds = int(row.select_one(".resend-form [data-seconds]")["data-seconds"])
    assert 39 <= seconds <= 40


@pytest.mark.parametrize(
    ("refusal", "window"),
    [("DarajaSubscriberLocked", 60), ("DarajaSystemBusy", 30), ("DarajaThrottled", 30)],
)
def test_a_push_daraja_refused_waits_before_resend(cashier_client, make_payment, refusal, window):
    # "A prompt is already open for this phone" (or busy/throttled): resending at once would
    # be refused the same way, so the button counts down.
    done = utcnow() - timedelta(seconds=10)
    p = make_payment(
        "rejected",
        checkout=None,
        amount=78,
        pushed_at=done - timedelta(minutes=5),
        final_at=done,
        push_error_code=refusal,
    )
    row = _soup(cashier_client.get("/cashier/")).find("li", id=f"payment-{p.id}")
    button = row.select_one(".resend-form button")
    assert button.has_attr("disabled")
    seconds = int(row.select_one(".resend-form [data-seconds]")["data-seconds"])
    assert window - 11 <= seconds <= window - 9


@pytest.mark.parametrize(("code", "offered"), [("8006", False), ("2028", False), ("1", True)])
def test_resend_is_offered_only_when_the_result_code_allows_it(
    cashier_client, make_payment, code, offered
):
    p = _old_failure(make_payment)
    p.result_code = code
    db.session.commit()
    row = _soup(cashier_client.get("/cashier/")).find("li", id=f"payment-{p.id}")
    assert (row.select_one(".resend-form") is not None) is offered


def test_resend_refused_without_javascript_is_flashed(cashier_client, make_payment):
    pushed = utcnow() - timedelta(seconds=30)
    original = make_payment("failed", result_code="2001", pushed_at=pushed, final_at=pushed)
    response = cashier_client.post(f"/cashier/payments/{original.id}/resend")
    assert response.status_code == 302
    page = cashier_client.get("/cashier/").get_data(as_text=True)
    assert "M-PESA refuses the same amount to the same phone within 2 minutes" in page
    assert len(_payments()) == 1


@pytest.mark.parametrize(
    ("status", "message"),
    [
        ("paid", "Only a failed or refused payment can be sent again."),
        ("pending", "Only a failed or refused payment can be sent again."),
        ("unconfirmed", "Only a failed or refused payment can be sent again."),
    ],
)
def test_resend_of_an_open_or_paid_attempt_is_refused(
    cashier_client, make_payment, status, message
):
    p = make_payment(status, pushed_at=utcnow() - timedelta(minutes=5))
    response = cashier_client.post(f"/cashier/payments/{p.id}/resend", headers=HX)
    assert message in _soup(response).select_one("[role=alert]").get_text()
    assert len(_payments()) == 1


def test_resend_of_an_already_paid_sale_is_refused(cashier_client, make_payment):
    old = _old_failure(make_payment)
    paid = make_payment("paid", receipt_number="UAT3333333", amount=200)
    paid.sale_ref = old.sale_ref
    db.session.commit()
    response = cashier_client.post(f"/cashier/payments/{old.id}/resend", headers=HX)
    assert "This sale is already paid." in _soup(response).select_one("[role=alert]").get_text()


def test_cancel_here_marks_the_row_and_keeps_watching(cashier_client, make_payment):
    p = make_payment("pending")
    response = cashier_client.post(f"/cashier/payments/{p.id}/cancel", headers=HX)
    soup = _soup(response)
    li = soup.find("li", id=f"payment-{p.id}")
    assert response.status_code == 200
    assert li["data-phase"] == "cancelled" and li.has_attr("hx-trigger")
    assert "Cancelled here" in soup.find(id="announcement").get_text()
    db.session.expire_all()
    payment = db.session.get(Payment, p.id)
    cashier = db.session.execute(sa.select(User).where(User.username == "cashier")).scalar_one()
    assert payment.cancelled_at is not None and payment.cancelled_by_id == cashier.id
    assert payment.status == "pending"  # M-Pesa cannot withdraw the prompt
    kinds = db.session.execute(
        sa.select(PaymentEvent.kind).where(PaymentEvent.payment_id == p.id)
    ).scalars()
    assert list(kinds) == ["cancel_local"]


def test_cancel_without_javascript_redirects_back(cashier_client, make_payment):
    p = make_payment("unconfirmed")
    response = cashier_client.post(f"/cashier/payments/{p.id}/cancel")
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/cashier/#payment-{p.id}")
    db.session.expire_all()
    assert db.session.get(Payment, p.id).cancelled_at is not None


def test_a_paid_row_cannot_be_cancelled(cashier_client, make_payment):
    p = make_payment("paid", receipt_number="UAT4444444")
    response = cashier_client.post(f"/cashier/payments/{p.id}/cancel", headers=HX)
    assert _soup(response).find("li")["data-phase"] == "paid"
    db.session.expire_all()
    assert db.session.get(Payment, p.id).cancelled_at is None


@pytest.mark.parametrize("action", ["resend", "cancel"])
def test_a_cashier_cannot_act_on_another_cashiers_sale(app, make_payment, action):
    other = User(username="cashier2", role="cashier", password_hash="x")
    db.session.add(other)
    db.session.commit()
    p = make_payment("failed", cashier_id=other.id)
    client = app.test_client()
    from tests.helpers import login

    login(client, "cashier")
    assert client.post(f"/cashier/payments/{p.id}/{action}", headers=HX).status_code == 403
    assert client.post(f"/cashier/payments/999/{action}", headers=HX).status_code == 404


def test_new_payment_form_shows_try_again_in_n_seconds(cashier_client, make_payment):
    make_payment("pending", pushed_at=utcnow() - timedelta(seconds=10))  # a live prompt
    response = cashier_client.post(
        "/cashier/payments",
        data={
            "phone": "0708374149",
            "amount": "99",
            "idempotency_key": "dbf1b498a652968dd22bfa807a362b7b",
        },
        headers=HX,
    )
    soup = _soup(response)
    error = soup.find(id="pay-error")
    assert response.status_code == 200
    assert "already has an M-PESA prompt open. Try again in" in error.get_text()
    assert 49 <= int(error.select_one("[data-seconds]")["data-seconds"]) <= 50
    assert soup.find(id="phone")["value"] == "0708374149"  # entries kept
    assert len(_payments()) == 1


def test_row_actions_are_real_forms_with_csrf(app, make_payment):
    from tests.helpers import PASSWORD

    past = utcnow() - timedelta(minutes=3)
    failed = make_payment("failed", result_code="1032", pushed_at=past, final_at=past)
    pending = make_payment("pending", amount=80)
    app.config["WTF_CSRF_ENABLED"] = True
    client = app.test_client()
    login_page = _soup(client.get("/login"))
    token = login_page.find("input", attrs={"name": "csrf_token"})["value"]
    client.post("/login", data={"username": "cashier", "password": PASSWORD, "csrf_token": token})
    page = _soup(client.get("/cashier/"))
    forms = page.select("form.row-action")
    assert len(forms) == 2
    for form in forms:
        assert form["method"] == "post" and form["action"] == form["hx-post"]
        assert form.find("input", attrs={"name": "csrf_token"})["value"]
    assert page.select_one(f"#payment-{failed.id} .resend-form")
    assert page.select_one(f"#payment-{pending.id} .cancel-form")
    assert client.post(f"/cashier/payments/{pending.id}/cancel").status_code == 400
    assert client.post(f"/cashier/payments/{failed.id}/resend").status_code == 400
    db.session.expire_all()
    assert db.session.get(Payment, pending.id).cancelled_at is None
