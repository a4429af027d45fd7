"""The cashier's counter over the test client: validation, htmx fragments, double submit."""

import re

import sqlalchemy as sa
from bs4 import BeautifulSoup

from app.extensions import db
from app.models import Payment, PaymentEvent
from tests.helpers import wait_for

HX = {"HX-Request": "true"}


def _count():
    return db.session.execute(sa.select(sa.func.count(Payment.id))).scalar_one()


def test_page_has_labelled_inputs_and_vendored_htmx(cashier_client):
    html = cashier_client.get("/cashier/").get_data(as_text=True)
    for field in ("phone", "amount", "reference"):
        assert f'<label for="{field}">' in html and f'id="{field}"' in html
    assert re.search(r'src="/static/vendor/htmx-\d+\.\d+\.\d+\.min\.js"', html)
    assert "unpkg" not in html and "cdn" not in html.lower()
    assert 'name="idempotency_key"' in html


def test_bad_amount_is_refused_before_anything_is_saved(cashier_client):
    r = cashier_client.post("/cashier/payments", data={"phone": "0708374149", "amount": "100.50"})
    assert r.status_code == 422
    assert "Whole shillings only, no decimals" in r.get_data(as_text=True)
    assert _count() == 0


def test_bad_phone_htmx_gets_the_form_back_with_entries(cashier_client):
    r = cashier_client.post(
        "/cashier/payments", data={"phone": "0202345678", "amount": "50"}, headers=HX
    )
    html = r.get_data(as_text=True)
    assert r.status_code == 200
    assert html.lstrip().startswith('<section id="pay-panel"')
    assert 'id="pay-error"' in html and "07XXXXXXXX" in html
    assert 'value="0202345678"' in html and 'value="50"' in html
    assert _count() == 0


def test_send_without_javascript_redirects_and_lists_the_row(live_app, cashier_client):
    r = cashier_client.post(
        "/cashier/payments",
        data={
            "phone": "0708374149",
            "amount": "25",
            "idempotency_key": "b945707f6ff07369cd4e27bffb61de7a",
        },
    )
    assert r.status_code == 302
    page = cashier_client.get("/cashier/").get_data(as_text=True)
    payment = db.session.execute(sa.select(Payment)).scalar_one()
    assert f'id="payment-{payment.id}"' in page
    assert payment.status == "pending" and payment.checkout_request_id.startswith("ws_CO_")


def test_double_submit_sends_one_push(live_app, cashier_client):
    data = {
        "phone": "0708374149",
        "amount": "30",
        "idempotency_key": "79fd43ca6327ea52c870f9648bba34bb",
    }
    first = cashier_client.post("/cashier/payments", data=data, headers=HX)
    second = cashier_client.post("/cashier/payments", data=data, headers=HX)
    assert first.status_code == second.status_code == 200
    assert _count() == 1
    [payment_id] = db.session.execute(sa.select(Payment.id)).scalars().all()
    # Both answers carry the one row (the second is what the browser sees if the first answer
    # was lost; counter.js keeps one copy); each row asks for its push, which leaves once.
    for answer in (first, second):
        assert f'id="payment-{payment_id}"' in answer.get_data(as_text=True)
    for _ in range(2):
        cashier_client.post(f"/cashier/payments/{payment_id}/send", headers=HX)
    pushes = cashier_client.get("/simulator/_control/pushes").get_json()
    assert len(pushes if isinstance(pushes, list) else pushes["pushes"]) == 1


def _save_and_send(client, data):
    """What the browser does: save the sale (the form is free again at once), then the new
    row asks for its push. Returns (payment id, the save's html, the send's html)."""
    saved = client.post("/cashier/payments", data=data, headers=HX)
    html = saved.get_data(as_text=True)
    payment_id = int(re.search(r'id="payment-(\d+)"', html).group(1))
    sent = client.post(f"/cashier/payments/{payment_id}/send", headers=HX)
    assert sent.status_code == 200
    return payment_id, html, sent.get_data(as_text=True)


def test_htmx_save_answers_at_once_and_the_row_sends_itself(live_app, cashier_client):
    data = {"phone": "0708374149", "amount": "40", "idempotency_key": "7f" + "e" * 30}
    saved = cashier_client.post("/cashier/payments", data=data, headers=HX)
    html = saved.get_data(as_text=True)
    assert 'data-status="initiating"' in html and "Sending to M-PESA" in html
    soup = BeautifulSoup(html, "html.parser")
    send_form = soup.select_one("li.row .send-form")
    assert send_form["hx-trigger"] == "load, submit" and send_form["method"] == "post"
    assert saved.headers["HX-Trigger"] == "totals-changed"  # "Still open" moves
    totals = cashier_client.get("/cashier/totals", headers=HX).get_data(as_text=True)
    assert BeautifulSoup(totals, "html.parser").select_one("#today-open").get_text() == "1"
    assert cashier_client.get("/simulator/_control/pushes").get_json() == []  # nothing sent yet


def test_htmx_send_then_row_polls_until_paid_with_286(live_app, cashier_client):
    payment_id, _saved, html = _save_and_send(
        cashier_client,
        {
            "phone": "0708374149",
            "amount": "40",
            "idempotency_key": "7fee14589c62962b2d4b1a18d4e906eb",
        },
    )
    assert 'hx-trigger="every 1500ms"' in html and 'data-status="pending"' in html
    url = f"/cashier/payments/{payment_id}/row"

    def settled():
        resp = cashier_client.get(url, headers=HX)
        return resp if resp.status_code == 286 else None

    final = wait_for(settled, timeout=10)
    body = final.get_data(as_text=True)
    assert body.lstrip().startswith(f'<li id="payment-{payment_id}"')
    assert 'data-status="paid"' in body and "hx-trigger" not in body
    assert "M-PESA receipt" in body
    assert final.headers.get("Vary") and "HX-Request" in final.headers["Vary"]
    kinds = (
        db.session.execute(
            sa.select(PaymentEvent.kind)
            .where(PaymentEvent.payment_id == payment_id)
            .order_by(PaymentEvent.id)
        )
        .scalars()
        .all()
    )
    assert kinds == ["created", "push_accepted", "success"]


def test_cancelled_by_amount_rule_shows_what_to_say(live_app, cashier_client):
    payment_id, _saved, _sent = _save_and_send(
        cashier_client,
        {
            "phone": "0708374149",
            "amount": "1032",
            "idempotency_key": "6677acfcb55a7a12958e6198519c0979",
        },
    )
    final = wait_for(
        lambda: (
            (
                resp := cashier_client.get(f"/cashier/payments/{payment_id}/row", headers=HX)
            ).status_code
            == 286
            and resp
        ),
        timeout=10,
    )
    body = final.get_data(as_text=True)
    assert 'data-status="failed"' in body
    assert "cancelled" in body.lower()


def test_cashier_cannot_see_another_cashiers_row(app, make_payment):
    from app.models import User

    other = User(username="cashier2", role="cashier", password_hash="x")
    db.session.add(other)
    db.session.commit()
    p = make_payment(cashier_id=other.id)
    client = app.test_client()
    from tests.helpers import login

    login(client, "cashier")
    assert client.get(f"/cashier/payments/{p.id}/row", headers=HX).status_code == 403


def test_daraja_refusal_is_shown_and_nothing_retried(live_app, cashier_client, till):
    # A wrong passkey makes Daraja answer "Wrong credentials": the row says so, no prompt sent.
    from app.crypto import encrypt

    till.passkey_enc = encrypt("not-the-passkey")
    db.session.commit()
    _id, _saved, html = _save_and_send(
        cashier_client,
        {
            "phone": "0708374149",
            "amount": "60",
            "idempotency_key": "34f0e438c88f3626e54b476a84b007db",
        },
    )
    assert 'data-status="rejected"' in html
    assert "passkey or shortcode is wrong" in html
    payment = db.session.execute(sa.select(Payment)).scalar_one()
    assert payment.push_error_code == "DarajaWrongCredentials"
    assert "500.001.1001" in payment.push_error_message


def test_idempotency_keys_are_per_cashier(live_app, cashier_client, till):
    """Another cashier cannot claim (or block) a sale by reusing its key."""
    from app.models import User
    from app.payments import service

    mallory = User(username="mallory", role="cashier", password_hash="x")
    db.session.add(mallory)
    db.session.commit()
    key = "0" * 32
    _, created = service.initiate_payment(
        till, mallory, phone="0711000001", amount="31", reference=None, idempotency_key=key
    )
    assert created
    r = cashier_client.post(
        "/cashier/payments",
        data={"phone": "0708374149", "amount": "31", "idempotency_key": key},
        headers=HX,
    )
    assert r.status_code == 200 and "hx-swap-oob" in r.get_data(as_text=True)
    owners = (
        db.session.execute(
            sa.select(User.username)
            .join(Payment, Payment.cashier_id == User.id)
            .order_by(Payment.id)
        )
        .scalars()
        .all()
    )
    assert owners == ["mallory", "cashier"]


def test_a_tampered_key_never_breaks_the_form(cashier_client, live_app):
    r = cashier_client.post(
        "/cashier/payments",
        data={"phone": "0708374149", "amount": "32", "idempotency_key": "x" * 500},
        headers=HX,
    )
    assert r.status_code == 200 and "hx-swap-oob" in r.get_data(as_text=True)
