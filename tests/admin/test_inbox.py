"""The admin callback inbox: list, filter, read the raw body, reprocess; the payment timeline."""

import sqlalchemy as sa
from bs4 import BeautifulSoup

from app.extensions import db
from app.models import Payment, RawCallback
from tests.helpers import failure_callback, post_json, success_callback


def _feed(client, till, make_payment):
    p = make_payment(amount=150)
    url = f"/cb/stk/{till.callback_token}"
    post_json(client, url, success_callback(p.checkout_request_id, receipt="INBOX12345"))
    post_json(client, url, success_callback(p.checkout_request_id, receipt="INBOX12345"))
    post_json(client, url, failure_callback(p.checkout_request_id, 1032))
    post_json(client, url, success_callback("ws_CO_NOBODY", receipt="ORPHAN1234"))
    client.post(url, data=b"garbage", content_type="application/json")
    return p


def test_inbox_lists_every_outcome_and_filters(admin_client, client, till, make_payment):
    _feed(client, till, make_payment)
    soup = BeautifulSoup(admin_client.get("/admin/callbacks").data, "html.parser")
    outcomes = [b.text for b in soup.select("#inbox tbody .badge")]
    assert outcomes == ["invalid", "orphan", "conflict", "duplicate", "applied"]
    soup = BeautifulSoup(admin_client.get("/admin/callbacks?outcome=orphan").data, "html.parser")
    rows = soup.select("#inbox tbody tr")
    assert len(rows) == 1 and "ORPHAN1234" in rows[0].text and "254708374149" in rows[0].text
    soup = BeautifulSoup(admin_client.get("/admin/callbacks?q=INBOX12345").data, "html.parser")
    assert len(soup.select("#inbox tbody tr")) == 2


def test_raw_body_is_shown_verbatim(admin_client, client, till, make_payment):
    _feed(client, till, make_payment)
    raw = db.session.execute(
        sa.select(RawCallback).where(RawCallback.outcome == "invalid")
    ).scalar_one()
    soup = BeautifulSoup(admin_client.get(f"/admin/callbacks/{raw.id}").data, "html.parser")
    assert soup.select_one("#raw-body").text == "garbage"


def test_reprocess_an_orphan_once_its_payment_exists(admin_client, client, till, make_payment):
    post_json(client, f"/cb/stk/{till.callback_token}", success_callback("ws_CO_EARLY", amount=150))
    raw = db.session.execute(sa.select(RawCallback)).scalar_one()
    assert raw.outcome == "orphan"
    p = make_payment(amount=150, checkout="ws_CO_EARLY")
    r = admin_client.post(f"/admin/callbacks/{raw.id}/reprocess")
    assert r.status_code == 302
    assert db.session.get(Payment, p.id, populate_existing=True).status == "paid"
    db.session.refresh(raw)
    assert raw.outcome == "applied"


def test_timeline_shows_conflicts(owner_client, client, till, make_payment):
    p = _feed(client, till, make_payment)
    soup = BeautifulSoup(owner_client.get(f"/owner/payments/{p.id}").data, "html.parser")
    rows = soup.select("#events tbody tr")
    assert [r.select("td")[2].text.split()[0] for r in rows] == ["success", "failure"]
    assert "conflict" in rows[1]["class"] and "conflict" in rows[1].text


def test_inbox_links_each_row_to_its_payment_with_flags(admin_client, client, till, make_payment):
    """Conflicts and "paid after cancel" show in the inbox, not only on the timeline."""
    from app.models import User
    from app.payments.service import cancel_locally

    p = _feed(client, till, make_payment)
    cancelled = make_payment(amount=200)
    cancel_locally(cancelled, db.session.execute(sa.select(User)).scalars().first())
    late_body = success_callback(cancelled.checkout_request_id, amount=200, receipt="LATE123456")
    post_json(client, f"/cb/stk/{till.callback_token}", late_body)
    soup = BeautifulSoup(admin_client.get("/admin/callbacks").data, "html.parser")
    rows = {r["id"]: r for r in soup.select("#inbox tbody tr")}
    by_payment = [r for r in rows.values() if f"/owner/payments/{p.id}" in str(r)]
    assert len(by_payment) == 3  # success, its duplicate, the contradicting failure
    assert all("conflict" in [f.text for f in r.select(".flag")] for r in by_payment)
    [late] = [r for r in rows.values() if f"/owner/payments/{cancelled.id}" in str(r)]
    assert "paid after cancel" in [f.text for f in late.select(".flag")]


def test_reprocessing_a_conflict_keeps_it_a_conflict(admin_client, client, till, make_payment):
    p = make_payment(amount=150)
    url = f"/cb/stk/{till.callback_token}"
    post_json(client, url, success_callback(p.checkout_request_id, amount=999))  # wrong amount
    raw = db.session.execute(sa.select(RawCallback)).scalar_one()
    assert raw.outcome == "conflict"
    admin_client.post(f"/admin/callbacks/{raw.id}/reprocess")
    db.session.expire_all()
    assert db.session.get(RawCallback, raw.id).outcome == "conflict"
    assert db.session.get(Payment, p.id).status == "pending"
