"""Takings over a period: Nairobi days of the paid instant, scopes, comparison, orphans, ranges."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from bs4 import BeautifulSoup

from app.extensions import db
from app.models import CallbackOutcome, RawCallback, Shop, Till, User
from app.reports import takings
from app.reports.periods import Period, Preset, choose_period
from app.reports.takings import Scope
from app.timeutil import NAIROBI, today_nairobi

D = date(2026, 11, 20)


def nbo(day: date, hour: int, minute: int = 0) -> datetime:
    """A Nairobi wall-clock time as the UTC instant the database stores."""
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=NAIROBI).astimezone(UTC)


@pytest.fixture
def sale(make_payment):
    def make(status: str, amount: int, started: datetime, paid: datetime | None = None, **kw):
        if status == "paid":
            kw.setdefault("receipt_number", f"R{uuid.uuid4().hex[:9].upper()}")
            kw["final_at"] = paid or started
        elif status in ("failed", "rejected"):
            kw["final_at"] = started
        return make_payment(status=status, amount=amount, created_at=started, **kw)

    return make


@pytest.fixture
def branch(app, till):
    """A second shop with its own till and cashier."""
    shop = Shop(name="Branch")
    db.session.add(shop)
    db.session.flush()
    other = Till(
        shop_id=shop.id,
        name="Branch counter",
        shortcode="600100",
        till_type="till",
        till_number="5123456",
        environment="simulator",
        callback_token=uuid.uuid4().hex,
    )
    cashier = User(username="branchcashier", role="cashier")
    cashier.set_password("a long enough password 42")
    db.session.add_all([other, cashier])
    db.session.commit()
    return other, cashier


def test_a_sale_counts_on_the_nairobi_day_it_was_paid(app, sale):
    # Started at 23:50 on D, paid at 00:10 on D+1 (Nairobi): takings of D+1, sent on D.
    sale("paid", 500, nbo(D, 23, 50), paid=nbo(D + timedelta(days=1), 0, 10))
    sale("paid", 200, nbo(D, 2, 59))  # 23:59 UTC the day before: still D in Nairobi
    day = takings.summary(Period(D, D), Scope())
    assert (day.paid_count, day.paid_kes, day.sent, day.sent_and_paid) == (1, 200, 2, 2)
    next_day = takings.summary(Period(D + timedelta(days=1), D + timedelta(days=1)), Scope())
    assert (next_day.paid_count, next_day.paid_kes, next_day.sent) == (1, 500, 0)
    by_day = takings.overview(
        Period(D - timedelta(days=1), D + timedelta(days=1)), Scope()
    ).over_time
    assert by_day == [
        (D - timedelta(days=1), 0, 0),
        (D, 1, 200),
        (D + timedelta(days=1), 1, 500),
    ]
    hours = takings.overview(Period(D, D), Scope()).over_time
    assert len(hours) == 24 and hours[2] == (2, 1, 200) and sum(h[2] for h in hours) == 200


def test_summary_counts_each_kind_once(app, sale):
    sale("paid", 100, nbo(D, 9))
    sale("paid", 301, nbo(D, 10))
    sale("failed", 50, nbo(D, 11), result_code="1032")
    sale("failed", 50, nbo(D, 11), result_code="1037")
    sale("rejected", 50, nbo(D, 12))  # never reached a phone: not "sent"
    sale("unknown", 70, nbo(D, 13))
    sale("pending", 70, nbo(D, 14))
    s = takings.summary(Period(D, D), Scope())
    assert (s.paid_count, s.paid_kes, s.average_sale) == (2, 401, 200)
    assert (s.sent, s.sent_and_paid, s.failed, s.unresolved) == (6, 2, 2, 2)
    assert s.success_rate == pytest.approx(2 / 6)
    assert takings.overview(Period(D, D), Scope()).failures == [("1032", 1), ("1037", 1)]


def test_an_empty_period_has_no_average_or_rate(app):
    s = takings.summary(Period(D, D), Scope())
    assert s.average_sale is None and s.success_rate is None and s.paid_kes == 0


def test_scopes_split_shops_tills_and_cashiers(app, sale, till, branch):
    other, branch_cashier = branch
    sale("paid", 100, nbo(D, 9))
    sale("paid", 900, nbo(D, 10), till_id=other.id, cashier_id=branch_cashier.id)
    period = Period(D, D)
    assert takings.summary(period, Scope()).paid_kes == 1000
    assert takings.summary(period, Scope(shop_id=till.shop_id)).paid_kes == 100
    assert takings.summary(period, Scope(shop_id=other.shop_id)).paid_kes == 900
    assert takings.summary(period, Scope(till_id=other.id)).paid_kes == 900
    assert takings.summary(period, Scope(cashier_id=branch_cashier.id)).paid_kes == 900
    assert takings.overview(period, Scope()).by_till == [
        ("Branch counter", 1, 900),
        (till.name, 1, 100),
    ]
    assert takings.overview(period, Scope()).by_cashier == [
        ("branchcashier", 1, 900),
        ("cashier", 1, 100),
    ]


def _orphan(till_id: int, amount: int, at: datetime, code: str = "0") -> None:
    db.session.add(
        RawCallback(
            till_id=till_id,
            body=b"{}",
            outcome=CallbackOutcome.ORPHAN,
            result_code=code,
            amount=amount,
            receipt_number=f"O{uuid.uuid4().hex[:9].upper()}",
            phone="254712345678",
            received_at=at,
        )
    )
    db.session.commit()


def test_orphan_money_counts_apart_and_is_listed(app, owner_client, sale, till, branch):
    other, _ = branch
    sale("paid", 100, nbo(D, 9))
    _orphan(till.id, 250, nbo(D, 10))
    _orphan(other.id, 40, nbo(D, 11))
    _orphan(till.id, 999, nbo(D, 12), code="1032")  # a failure: no money
    s = takings.summary(Period(D, D), Scope())
    assert (s.paid_kes, s.orphan_count, s.orphan_kes) == (100, 2, 290)
    assert takings.summary(Period(D, D), Scope(till_id=other.id)).orphan_kes == 40
    assert takings.summary(Period(D, D), Scope(cashier_id=1)).orphan_count == 0
    page = owner_client.get(f"/owner/orphans?from={D}&to={D}").get_data(as_text=True)
    rows = BeautifulSoup(page, "html.parser").select("#orphans tbody tr")
    assert len(rows) == 2
    assert "2547••••678" in rows[0].get_text()
    assert "254712345678" not in page  # masked on this list
    html = owner_client.get(f"/owner/takings?from={D}&to={D}").get_data(as_text=True)
    assert "KES 290" in BeautifulSoup(html, "html.parser").select_one("#orphan-kes").get_text()


def test_the_page_compares_with_the_previous_period(app, owner_client, sale):
    sale("paid", 300, nbo(D, 9))
    sale("paid", 100, nbo(D - timedelta(days=1), 9))
    html = owner_client.get(f"/owner/takings?from={D}&to={D}").get_data(as_text=True)
    soup = BeautifulSoup(html, "html.parser")
    assert soup.select_one("#paid-kes").get_text(" ", strip=True).startswith("KES 300 +200%")
    assert "paid" in soup.select_one("#takings-rule").get_text()


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("from=2026-13-01", "is not a date"),
        ("from=2026-11-20&to=2026-11-01", "end date is before"),
        ("from=1999-01-01&to=2026-11-01", "Choose days from 2000-01-01"),
        ("from=9999-12-31", "Choose days from"),
        ("to=31-12-2026", "is not a date"),
    ],
)
def test_bad_ranges_get_a_message_not_a_500(owner_client, query, message):
    response = owner_client.get(f"/owner/takings?{query}")
    assert response.status_code == 200
    error = BeautifulSoup(response.data, "html.parser").select_one("#period-error")
    assert error is not None and message in error.get_text()


def test_a_long_range_keeps_totals_and_explains_the_missing_charts(owner_client, sale):
    sale("paid", 300, nbo(D, 9))
    html = owner_client.get("/owner/takings?from=2024-01-01&to=2026-11-30").get_data(as_text=True)
    soup = BeautifulSoup(html, "html.parser")
    assert "at most 366 days" in soup.select_one("#charts-note").get_text()
    assert soup.select_one("#paid-kes").get_text(strip=True).startswith("KES 300")


def test_presets_are_nairobi_periods():
    today = date(2026, 12, 2)
    assert choose_period({}, today).period == Period(today, today)
    yesterday = date(2026, 12, 1)
    assert choose_period({"range": "yesterday"}, today).period == Period(yesterday, yesterday)
    assert choose_period({"range": "7d"}, today).period == Period(date(2026, 11, 26), today)
    assert choose_period({"range": "month"}, today).period == Period(date(2026, 12, 1), today)
    assert choose_period({"range": "nonsense"}, today).preset is Preset.TODAY
    assert (
        choose_period({"from": "2026-11-26", "to": "2026-12-02"}, today).preset
        is Preset.LAST_7_DAYS
    )
    assert Period(date(2026, 11, 1), date(2026, 11, 30)).previous() == Period(
        date(2026, 10, 2), date(2026, 10, 31)
    )


def test_day_summaries_agree_with_the_summary_of_each_day(app, sale, till, branch):
    other, _ = branch
    start = today_nairobi() - timedelta(days=3)
    for i in range(4):
        day = start + timedelta(days=i)
        sale("paid", 100 * (i + 1), nbo(day, 8))
        sale("failed", 10, nbo(day, 9), result_code="1032")
        sale(
            "paid", 7, nbo(day, 23, 30), paid=nbo(day + timedelta(days=1), 0, 30), till_id=other.id
        )
    _orphan(till.id, 55, nbo(start, 12))
    period = Period(start, start + timedelta(days=3))
    lines = takings.day_summaries(period, Scope())
    assert [line.day for line in lines] == period.each_day()
    for line in lines:
        one = takings.summary(Period(line.day, line.day), Scope())
        assert (line.paid_count, line.paid_kes, line.sent, line.failed, line.unresolved) == (
            one.paid_count, one.paid_kes, one.sent, one.failed, one.unresolved
        )  # fmt: skip
        assert line.orphan_kes == one.orphan_kes


@pytest.mark.parametrize("days", [1, 3])
def test_the_pages_single_pass_agrees_with_the_summary(app, sale, till, branch, days):
    other, branch_cashier = branch
    start = D - timedelta(days=days - 1)
    for i in range(days):
        day = start + timedelta(days=i)
        sale("paid", 100 + i, nbo(day, 8))
        sale("paid", 7, nbo(day, 9), till_id=other.id, cashier_id=branch_cashier.id)
        sale("failed", 10, nbo(day, 10), result_code="1032")
        sale("failed", 10, nbo(day, 11), result_code=None)
        sale("unconfirmed", 10, nbo(day, 12))
    _orphan(till.id, 55, nbo(start, 12))
    period = Period(start, D)
    for scope in (Scope(), Scope(till_id=other.id), Scope(cashier_id=branch_cashier.id)):
        view = takings.overview(period, scope)
        assert view.summary == takings.summary(period, scope)
        assert sum(kes for *_, kes in view.over_time) == view.summary.paid_kes
        assert sum(kes for *_, kes in view.by_till) == view.summary.paid_kes
        assert sum(kes for *_, kes in view.by_cashier) == view.summary.paid_kes
        assert sum(n for _, n in view.failures) == view.summary.failed
