"""The day close: refused while sales are open unexplained, stored once, then only adjusted."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa
from bs4 import BeautifulSoup

from app.extensions import db
from app.models import AuditEntry, DayClose, Payment
from app.payments import service
from app.payments.service import Outcome
from app.payments.states import Event, Source
from app.timeutil import NAIROBI

D = date(2026, 11, 20)


def nbo(hour: int, minute: int = 0) -> datetime:
    return datetime(D.year, D.month, D.day, hour, minute, tzinfo=NAIROBI).astimezone(UTC)


@pytest.fixture
def day(make_payment):
    return {
        "paid": make_payment(
            status="paid", amount=500, created_at=nbo(9), final_at=nbo(9, 1),
            receipt_number="QKD1111111",
        ),
        "failed": make_payment(
            status="failed", amount=200, created_at=nbo(10), final_at=nbo(10, 1),
            result_code="1032",
        ),
        "open": make_payment(status="unconfirmed", amount=300, created_at=nbo(11)),
    }  # fmt: skip


def _url(till, **extra) -> str:
    args = "&".join(f"{k}={v}" for k, v in {"day": D.isoformat(), "till": till.id, **extra}.items())
    return f"/owner/close?{args}"


def test_the_z_report_shows_the_days_figures(owner_client, till, day):
    soup = BeautifulSoup(owner_client.get(_url(till)).data, "html.parser")
    assert soup.select_one("#z-paid-kes").get_text(strip=True) == "KES 500"
    assert soup.select_one("#z-unresolved").get_text(strip=True) == "1"
    statuses = [tr.get_text(" ", strip=True) for tr in soup.select("#z-by-status tbody tr")]
    assert statuses == ["Failed 1 KES 200", "Paid 1 KES 500", "Unconfirmed 1 KES 300"]
    assert soup.select_one(f"#explain-{day['open'].id}") is not None
    assert soup.select_one("#z-open") is not None


def test_closing_is_refused_until_each_open_sale_is_explained(owner_client, till, day):
    r = owner_client.post(_url(till).replace("/owner/close?", "/owner/close?"), data={})
    assert r.status_code == 422
    assert "not final yet" in BeautifulSoup(r.data, "html.parser").select_one("#close-error").text
    assert db.session.execute(sa.select(sa.func.count()).select_from(DayClose)).scalar_one() == 0
    r = owner_client.post(_url(till), data={f"explain-{day['open'].id}": "customer paid cash"})
    assert r.status_code == 302
    record = db.session.execute(sa.select(DayClose)).scalar_one()
    assert record.figures["paid_kes"] == 500 and record.figures["unresolved"] == 1
    assert record.explanations == {str(day["open"].id): "customer paid cash"}
    assert record.closed_by.username == "owner" and record.scope == f"till:{till.id}"
    entry = db.session.execute(
        sa.select(AuditEntry).where(AuditEntry.action == "day.closed")
    ).scalar_one()
    assert entry.target == f"till:{till.id}" and entry.detail["paid_kes"] == 500


def test_a_day_closes_once(owner_client, till, make_payment):
    make_payment(
        status="paid", amount=50, created_at=nbo(9), final_at=nbo(9), receipt_number="QKD2222222"
    )
    assert owner_client.post(_url(till), data={}).status_code == 302
    r = owner_client.post(_url(till), data={})
    assert r.status_code == 422 and "already closed" in r.get_data(as_text=True)
    assert db.session.execute(sa.select(sa.func.count()).select_from(DayClose)).scalar_one() == 1


def test_a_late_change_is_an_adjustment_not_a_rewrite(owner_client, till, day):
    owner_client.post(_url(till), data={f"explain-{day['open'].id}": "waiting for statement"})
    # After closing, the unconfirmed sale turns out paid (a late callback or a query).
    service.apply_event(
        day["open"].id,
        Outcome(Event.SUCCESS, Source.QUERY, result_code="0", receipt_number="QKLATE0001",
                data={"amount": 300}),
    )  # fmt: skip
    assert db.session.get(Payment, day["open"].id).status == "paid"
    soup = BeautifulSoup(owner_client.get(_url(till)).data, "html.parser")
    assert soup.select_one("#z-paid-kes").get_text(strip=True) == "KES 500"  # as closed
    adjusted = soup.select_one(f"#adjusted-{day['open'].id}")
    assert adjusted is not None and "Unconfirmed → Paid" in adjusted.get_text(" ", strip=True)
    assert db.session.execute(sa.select(DayClose)).scalar_one().figures["paid_kes"] == 500


def test_a_shop_closes_apart_from_its_till(owner_client, till, day):
    url = f"/owner/close?day={D}&shop={till.shop_id}"
    r = owner_client.post(url, data={f"explain-{day['open'].id}": "checked"})
    assert r.status_code == 302
    scopes = db.session.execute(sa.select(DayClose.scope)).scalars().all()
    assert scopes == [f"shop:{till.shop_id}"]
    assert owner_client.post(_url(till), data={f"explain-{day['open'].id}": "x"}).status_code == 302


@pytest.mark.parametrize(
    "query", ["day=tomorrow", "day=2999-01-01", "till=999999", "shop=abc&day=x"]
)
def test_bad_choices_get_a_message(owner_client, till, query):
    r = owner_client.get(f"/owner/close?{query}")
    assert r.status_code in (200, 302)
    if r.status_code == 200:
        assert BeautifulSoup(r.data, "html.parser").select_one("#close-error") is not None


def test_cashiers_cannot_close(client, till):
    from tests.helpers import login

    login(client, "cashier")
    assert client.post(_url(till), data={}).status_code == 403


def test_the_z_report_says_whether_a_statement_covers_the_day(owner_client, till, day):
    soup = BeautifulSoup(owner_client.get(_url(till)).data, "html.parser")
    assert "not yet" in soup.select_one("#z-reconciled").get_text()
    header = "Receipt No.,Completion Time,Transaction Status,Paid In\n"
    period = f"Time Period:,{D:%d-%m-%Y} - {D:%d-%m-%Y}\n"
    body = f"{period}{header}QKD1111111,{D} 09:01:00,Completed,500.00\n"
    owner_client.post(
        f"/owner/statements?till={till.id}",
        data={"statement": (io.BytesIO(body.encode()), "s.csv")},
        content_type="multipart/form-data",
    )
    soup = BeautifulSoup(owner_client.get(_url(till)).data, "html.parser")
    assert "yes" in soup.select_one("#z-reconciled").get_text()
