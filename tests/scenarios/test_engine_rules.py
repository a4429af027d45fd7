"""The engine against the simulator's stateful rules, the virtual phone and the production guard."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta

import pytest
import requests
import sqlalchemy as sa

from app.config import SANDBOX_PASSKEY
from app.daraja import DarajaClient, StkPushRequest
from app.demo import simulator_till
from app.extensions import db
from app.jobs.poll import poll_payments
from app.models import Payment, PaymentEvent, RawCallback, Till, User
from app.models.types import utcnow
from app.payments import service
from app.simulator.settings import DEMO_CONSUMER_KEY, DEMO_CONSUMER_SECRET, SANDBOX_SHORTCODE
from app.simulator.state import get_state
from tests.helpers import wait_for

PHONE = "254711222333"


def _cashier() -> User:
    return db.session.execute(sa.select(User).where(User.username == "cashier")).scalar_one()


def _send(till: Till, amount: int = 150, phone: str = PHONE) -> int:
    payment, created = service.initiate_payment(
        till,
        _cashier(),
        phone=phone,
        amount=amount,
        reference=None,
        idempotency_key=uuid.uuid4().hex,
    )
    assert created
    return payment.id


def _reload(payment_id: int) -> Payment:
    return db.session.get(Payment, payment_id, populate_existing=True)


def _kinds(payment_id: int) -> list[tuple[str, str]]:
    rows = db.session.execute(
        sa.select(PaymentEvent.kind, PaymentEvent.to_status)
        .where(PaymentEvent.payment_id == payment_id)
        .order_by(PaymentEvent.id)
    )
    return [tuple(r) for r in rows]


def _other_merchant_push(app, phone: str = PHONE, amount: int = 150) -> str:
    """A push to the same phone that PesaDesk never saw (another shop, another system)."""
    client = DarajaClient(app.config["SIMULATOR_URL"], DEMO_CONSUMER_KEY, DEMO_CONSUMER_SECRET)
    try:
        accepted = client.stk_push(
            StkPushRequest(
                business_short_code=SANDBOX_SHORTCODE,
                passkey=SANDBOX_PASSKEY,
                transaction_type="CustomerPayBillOnline",
                amount=amount,
                party_a=phone,
                party_b=SANDBOX_SHORTCODE,
                phone_number=phone,
                callback_url="http://127.0.0.1:9/elsewhere",  # not ours; nobody listens
                account_reference="Other",
                transaction_desc="Payment",
            )
        )
    finally:
        client.close()
    return accepted.checkout_request_id


def _settled(app) -> bool:
    pushes = get_state(app).list_pushes()
    return bool(pushes) and all(p["state"] == "completed" for p in pushes)


def test_same_amount_within_two_minutes_fails_with_17(sim, till):
    # The engine's own guard cannot see a push made elsewhere; M-Pesa's rule still applies.
    _other_merchant_push(sim)
    wait_for(lambda: _settled(sim))
    pid = _send(till, amount=150)
    wait_for(lambda: _reload(pid).status == "failed", timeout=5)
    p = _reload(pid)
    assert (p.result_code, p.result_desc) == ("17", "Rule limited.")
    assert [k for k in _kinds(pid)][-1] == ("failure", "failed")


def test_subscriber_lock_refuses_the_push(sim, till):
    sim.config["SIMULATOR_CALLBACK_DELAY"] = 30  # the other prompt stays on the phone
    _other_merchant_push(sim)
    pid = _send(till, amount=200)
    p = _reload(pid)
    assert p.status == "rejected"  # refused before any prompt: the cashier may resend later
    assert p.push_error_code == "DarajaSubscriberLocked"
    assert "Unable to lock subscriber" in p.push_error_message
    assert len(get_state(sim).list_pushes()) == 1  # ours never became a prompt


def test_spike_arrest_on_the_query_backs_the_till_off(sim, till):
    sim.config.update(SIMULATOR_SPIKE_ARREST_RPS=0.2, SIMULATOR_CALLBACK_DELAY=30)
    pid = _send(till)
    assert _reload(pid).status == "pending"
    later = utcnow() + timedelta(seconds=60)
    counts = poll_payments(now=later)  # the query follows the push within 1/0.2 s
    assert counts["settled"] == 0
    p = _reload(pid)
    assert p.status == "pending"  # throttled is not an answer
    assert p.next_query_at >= later + timedelta(seconds=25)
    till_row = db.session.get(Till, till.id, populate_existing=True)
    assert till_row.backoff_until is not None and till_row.backoff_until > later


def _open_phone(app, phone: str = PHONE) -> None:
    page = requests.get(f"{app.config['SIMULATOR_URL']}/phone", params={"phone": phone}, timeout=5)
    assert page.status_code == 200 and 'id="phone-screen"' in page.text


def _answer(app, checkout: str, action: str, pin: str = "", phone: str = PHONE) -> None:
    response = requests.post(
        f"{app.config['SIMULATOR_URL']}/phone/answer",
        data={"phone": phone, "checkout_request_id": checkout, "action": action, "pin": pin},
        headers={"HX-Request": "true"},
        timeout=5,
    )
    assert response.status_code == 200 and 'id="phone-screen"' in response.text


@pytest.mark.parametrize(
    ("action", "pin", "status", "code"),
    [
        ("pay", "1234", "paid", "0"),
        ("pay", "9999", "failed", "2001"),
        ("cancel", "", "failed", "1032"),
        (None, "", "failed", "1037"),
    ],
    ids=["right-pin", "wrong-pin", "cancel", "ignored"],
)
def test_virtual_phone_decides_the_payment(sim, till, action, pin, status, code):
    sim.config["SIMULATOR_PROMPT_TIMEOUT"] = 0.4 if action is None else 5
    _open_phone(sim)
    pid = _send(till, amount=250)
    p = _reload(pid)
    assert p.status == "pending"
    screen = requests.get(
        f"{sim.config['SIMULATOR_URL']}/phone/screen",
        params={"phone": PHONE, "showing": "idle"},
        headers={"HX-Request": "true"},
        timeout=5,
    )
    assert "Pay KES 250 to PesaDesk Demo Shop account Sale. Enter M-PESA PIN" in screen.text
    if action is not None:
        _answer(sim, p.checkout_request_id, action, pin)
    wait_for(lambda: _reload(pid).status == status, timeout=5)
    p = _reload(pid)
    assert p.result_code == code
    assert (p.receipt_number is not None) is (status == "paid")


def test_production_till_switches_the_embedded_simulator_off(app, client):
    assert client.get("/simulator/_control/pushes").status_code == 200
    live = simulator_till("High Street")
    live.environment = "production"
    db.session.add(live)
    db.session.commit()
    reason = "Till 'High Street' is in production: the Daraja simulator is disabled."
    api = client.get("/simulator/oauth/v1/generate?grant_type=client_credentials")
    assert api.status_code == 403
    assert (api.get_json()["errorCode"], api.get_json()["errorMessage"]) == (
        "SIMULATOR_DISABLED",
        reason,
    )
    control = client.post("/simulator/_control/reset")
    assert (control.status_code, control.get_json()) == (403, {"error": reason})
    page = client.get("/simulator/phone?phone=0708374149")
    assert page.status_code == 403 and "High Street" in page.get_data(as_text=True)


def test_callback_during_a_timed_out_push_pays_once_a_query_confirms_it(sim, till):
    state = get_state(sim)
    requests.post(
        f"{sim.config['SIMULATOR_URL']}/_control/next",
        json={"scenario": "response-timeout"},
        timeout=5,
    ).raise_for_status()

    def customer_pays_at_once() -> None:
        # While the answer is held, the customer pays and M-Pesa calls back immediately.
        wait_for(lambda: state.list_pushes(), timeout=5)
        checkout = state.list_pushes()[0]["checkout_request_id"]
        state.decide(checkout, result_code=0, callback="send", delay_s=0.0)

    helper = threading.Thread(target=customer_pays_at_once)
    helper.start()
    pid = _send(till)
    helper.join(timeout=5)
    push = state.get_push(state.list_pushes()[0]["checkout_request_id"])
    assert push.delivered.wait(5)
    db.session.expire_all()
    # The callback arrived while the payment had no CheckoutRequestID: it fits the unanswered
    # push by phone, amount and time, which a forger can know too. It is a candidate only.
    [raw] = db.session.execute(sa.select(RawCallback)).scalars().all()
    assert raw.outcome == "candidate"
    payment = _reload(pid)
    assert payment.status == "unknown" and payment.checkout_request_id is None
    assert payment.candidate_checkout_id == push.checkout_request_id
    # The reconciliation query on our shortcode knows that id and says paid: now it is ours,
    # the query's answer decides, and the callback brings the receipt.
    counts = poll_payments(now=utcnow() + timedelta(seconds=120))
    assert counts["settled"] == 1
    payment = _reload(pid)
    assert payment.status == "paid" and payment.receipt_number == push.receipt
    assert payment.checkout_request_id == push.checkout_request_id
    db.session.expire_all()
    assert db.session.get(RawCallback, raw.id).outcome == "applied"
    poll_payments(now=utcnow() + timedelta(seconds=240))
    assert _reload(pid).status == "paid"
