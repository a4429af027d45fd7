"""Orphan money: an admin links it to the sale whose answer was lost, or keeps it as a sale."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import AuditEntry, CallbackOutcome, Payment, PaymentEvent, RawCallback
from app.models.types import utcnow


@pytest.fixture
def orphan(app, till):
    def make(amount: int = 500, receipt: str = "QKO1234567", **kw) -> RawCallback:
        raw = RawCallback(
            till_id=kw.pop("till_id", till.id), body=b"{}", outcome=CallbackOutcome.ORPHAN,
            result_code=kw.pop("result_code", "0"), amount=amount, receipt_number=receipt,
            phone="254712345678", received_at=utcnow(), **kw,
        )  # fmt: skip
        db.session.add(raw)
        db.session.commit()
        return raw

    return make


def _reload(model, id_):
    db.session.expire_all()
    return db.session.get(model, id_)


def _audit(action: str) -> list[AuditEntry]:
    return list(
        db.session.execute(sa.select(AuditEntry).where(AuditEntry.action == action)).scalars()
    )


def test_linking_makes_the_lost_sale_paid_with_the_callbacks_receipt(
    admin_client, orphan, make_payment
):
    raw = orphan(amount=500)
    sale = make_payment(status="unknown", amount=500, checkout=None)
    r = admin_client.post(
        f"/owner/orphans/{raw.id}/link", data={"payment_id": str(sale.id), "note": "SMS seen"}
    )
    assert r.status_code == 302
    sale = _reload(Payment, sale.id)
    assert (sale.status, sale.receipt_number) == ("paid", "QKO1234567")
    raw = _reload(RawCallback, raw.id)
    assert (raw.outcome, raw.payment_id) == ("applied", sale.id)
    event = db.session.execute(
        sa.select(PaymentEvent).where(PaymentEvent.payment_id == sale.id)
    ).scalar_one()
    assert event.source == "manual" and f"callback #{raw.id}" in event.note
    assert [a.detail["callback"] for a in _audit("callback.linked_to_sale")] == [raw.id]


@pytest.mark.parametrize(
    ("sale_kw", "typed", "message"),
    [
        ({"status": "unknown", "amount": 499}, None, "The amounts differ"),
        ({"status": "failed", "amount": 500}, None, "Only an unknown or unconfirmed"),
        ({"status": "unknown", "amount": 500}, "abc", "Type the number of the sale"),
        ({"status": "unknown", "amount": 500}, "999999", "Type the number of the sale"),
    ],
)
def test_a_link_that_does_not_fit_is_refused_with_a_message(
    admin_client, orphan, make_payment, sale_kw, typed, message
):
    raw = orphan(amount=500)
    sale = make_payment(checkout=None, **sale_kw)
    admin_client.post(
        f"/owner/orphans/{raw.id}/link",
        data={"payment_id": typed or str(sale.id), "note": "checked"},
    )
    page = admin_client.get("/owner/orphans").get_data(as_text=True)
    assert message in page
    assert _reload(Payment, sale.id).status == sale_kw["status"]
    assert _reload(RawCallback, raw.id).outcome == "orphan"


def test_accepting_makes_a_sale_of_its_own_once(admin_client, orphan):
    raw = orphan(amount=750, receipt="QKA7777777")
    r = admin_client.post(f"/owner/orphans/{raw.id}/accept", data={"note": "other POS"})
    assert r.status_code == 302
    payment = db.session.execute(
        sa.select(Payment).where(Payment.receipt_number == "QKA7777777")
    ).scalar_one()
    assert (payment.status, payment.amount_kes, payment.cashier_id) == ("paid", 750, None)
    assert payment.final_at == raw.received_at  # counts on the day the money came
    assert _reload(RawCallback, raw.id).outcome == "applied"
    # Twice: the callback is no longer an orphan, so nothing more happens.
    admin_client.post(f"/owner/orphans/{raw.id}/accept", data={"note": "again"})
    count = db.session.execute(
        sa.select(sa.func.count()).where(Payment.receipt_number == "QKA7777777")
    ).scalar_one()
    assert count == 1
    assert len(_audit("callback.accepted_as_sale")) == 1


def test_accepting_needs_a_note_and_a_success(admin_client, orphan):
    raw = orphan(amount=80, receipt="QKB8888888")
    admin_client.post(f"/owner/orphans/{raw.id}/accept", data={"note": "  "})
    assert _reload(RawCallback, raw.id).outcome == "orphan"
    failed = orphan(amount=80, receipt="QKC9999999", result_code="1032")
    admin_client.post(f"/owner/orphans/{failed.id}/accept", data={"note": "x"})
    assert _reload(RawCallback, failed.id).outcome == "orphan"
    assert db.session.execute(sa.select(sa.func.count()).select_from(Payment)).scalar_one() == 0


def test_owners_see_orphans_but_cannot_decide(owner_client, orphan):
    raw = orphan()
    page = owner_client.get("/owner/orphans").get_data(as_text=True)
    assert f'id="orphan-{raw.id}"' in page and f'id="accept-{raw.id}"' not in page
    assert (
        owner_client.post(f"/owner/orphans/{raw.id}/accept", data={"note": "x"}).status_code == 403
    )
