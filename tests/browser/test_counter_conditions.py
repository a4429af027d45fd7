"""The counter under real conditions: a dropped connection, an ended session, a slow Daraja,
a small screen, a late receipt. Never silent, never frozen, never a lost sale."""

from __future__ import annotations

import re
import uuid

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from app.models import Payment, User
from app.models.types import utcnow
from tests.browser.conftest import db_engine, login
from tests.browser.test_counter import MASKED, PHONE, _rows, _send

pytestmark = pytest.mark.browser

OFFLINE = "Not sent: the connection dropped. Nothing was charged. Press Enter to try again."


def _visible_in_viewport(locator) -> bool:
    return locator.evaluate(
        "el => { const r = el.getBoundingClientRect();"
        " return r.top >= 0 && r.bottom <= window.innerHeight && r.height > 0; }"
    )


def test_a_dropped_connection_is_said_and_what_was_typed_stays(server, page):
    login(page, server, "cashier")
    _send(page, PHONE, "60")
    first = _rows(page).first
    expect(first).to_have_attribute("data-phase", re.compile("pin|sending"))

    page.context.set_offline(True)
    page.fill("#phone", "0711 222 333")
    page.fill("#amount", "75")
    page.press("#amount", "Enter")
    alert = page.locator("#pay-alert")
    expect(alert).to_be_visible()
    expect(alert).to_have_text(OFFLINE)
    expect(page.locator("#phone")).to_have_value("0711 222 333")
    expect(page.locator("#amount")).to_have_value("75")
    # The live rows cannot update either, and the counter says so.
    expect(page.locator("#counter-alert")).to_contain_text("Connection lost", timeout=10_000)
    # Cancel on a row, and the search, say so where they are.
    first.get_by_role("button", name="Cancel here").click()
    expect(first.locator(".row-alert")).to_contain_text("Not done: the connection dropped")
    page.fill("#q", "149")
    expect(page.locator("#search-alert")).to_contain_text("Search failed")

    page.context.set_offline(False)
    page.press("#amount", "Enter")  # the same form, the same key: tried again, not doubled
    expect(_rows(page)).to_have_count(2)
    expect(page.locator("#pay-alert")).to_be_hidden()
    expect(page.locator("#phone")).to_have_value("")
    expect(page.locator("#counter-alert")).to_be_hidden(timeout=10_000)


def test_an_ended_session_is_said_and_nothing_is_lost(server, page):
    login(page, server, "cashier")
    _send(page, PHONE, "44")
    expect(_rows(page)).to_have_count(1)
    page.context.clear_cookies()  # the session ended (logged out elsewhere, cookie gone)
    # The live row's next poll is refused: the counter says why instead of freezing.
    expect(page.locator("#counter-alert")).to_contain_text(
        "You are logged out, so nothing was sent", timeout=10_000
    )
    page.fill("#phone", "0711222333")
    page.fill("#amount", "45")
    page.press("#amount", "Enter")
    alert = page.locator("#pay-alert")
    expect(alert).to_contain_text("Your login session has ended or changed, so nothing was sent")
    expect(page.locator("#phone")).to_have_value("0711222333")
    expect(page.locator("#amount")).to_have_value("45")
    expect(page.locator("#pay-panel h2")).to_have_text("New payment")  # no login page inside


def test_a_changed_session_token_is_said(server, page):
    """A CSRF token that no longer matches the session (a new login elsewhere, a restart)."""
    login(page, server, "cashier")
    page.evaluate(
        "document.body.setAttribute('hx-headers', JSON.stringify({'X-CSRFToken': 'stale'}));"
        "document.querySelectorAll('input[name=csrf_token]').forEach(i => i.value = 'stale');"
    )
    page.fill("#phone", PHONE)
    page.fill("#amount", "46")
    page.press("#amount", "Enter")
    expect(page.locator("#pay-alert")).to_contain_text("Your login session has ended or changed")
    expect(page.locator("#amount")).to_have_value("46")


@pytest.mark.server_env(
    PESADESK_DARAJA_READ_TIMEOUT="6", PESADESK_SIMULATOR_TIMEOUT_RESPONSE_DELAY="10"
)
def test_a_slow_push_does_not_freeze_the_form_or_lose_the_next_sale(server, page):
    login(page, server, "cashier")
    _send(page, PHONE, "7072")  # the simulator holds this push's answer beyond the timeout
    slow = page.locator("#" + _rows(page).first.get_attribute("id"))
    expect(slow).to_have_attribute("data-phase", "sending", timeout=2_000)
    expect(slow.locator(".msg")).to_have_text("Sending to M-PESA…")
    # The next customer, within two seconds: the form is free, the sale is not lost.
    _send(page, "0711222333", "150")
    expect(_rows(page)).to_have_count(2, timeout=2_000)
    second = _rows(page).first
    assert second.get_attribute("id") != slow.get_attribute("id")
    expect(second).to_have_attribute("data-status", "paid", timeout=20_000)
    # The slow one ends as unknown (never re-sent), then its callback is checked by query.
    expect(slow).to_have_attribute("data-status", re.compile("unknown|paid"), timeout=20_000)


def test_at_360_px_the_sale_just_sent_is_in_view(live_server, browser):
    context = browser.new_context(viewport={"width": 360, "height": 740})
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        login(page, live_server.base, "cashier")
        _add_sales(live_server.database_url, 6)  # a busy morning already below
        page.reload()
        _send(page, PHONE, "90")
        row = _rows(page).first
        expect(row.locator(".amount")).to_have_text("KES 90")
        assert page.evaluate("window.scrollY") == 0
        assert _visible_in_viewport(row), row.bounding_box()
        expect(page.locator("#phone")).to_be_focused()
    finally:
        context.close()


def test_eight_rows_fit_on_a_1280_by_800_screen(live_server, page):
    login(page, live_server.base, "cashier")
    _add_sales(live_server.database_url, 12)
    page.reload()
    expect(_rows(page)).to_have_count(12)
    visible = sum(1 for i in range(12) if _visible_in_viewport(_rows(page).nth(i)))
    assert visible >= 8, visible


# The prompt ends after 2 s; the first status query (3 s) finds it paid, the callback with
# its receipt comes 10 s later.
@pytest.mark.server_env(PESADESK_QUERY_FIRST_DELAY="3", PESADESK_SIMULATOR_LATE_CALLBACK_DELAY="10")
def test_totals_follow_the_rows_and_a_late_receipt_appears(server, page):
    login(page, server, "cashier")
    expect(page.locator("#today-open")).to_have_text("0")
    _send(page, PHONE, "3030")  # paid; the query knows first, the callback comes late
    row = page.locator("#" + _rows(page).first.get_attribute("id"))
    expect(page.locator("#today-open")).to_have_text("1")
    expect(row).to_have_attribute("data-status", "paid", timeout=20_000)
    expect(row.locator(".msg")).to_contain_text("no receipt number yet")
    expect(page.locator("#today-paid-count")).to_have_text("1")
    expect(page.locator("#today-paid-kes")).to_have_text("KES 3,030")
    expect(page.locator("#today-open")).to_have_text("0")
    # The callback brings the receipt: it appears on the row, no reload.
    expect(row.locator(".receipt strong")).to_have_text(
        re.compile(r"^[A-Z0-9]{10}$"), timeout=25_000
    )
    expect(row.locator(".phone")).to_have_text(MASKED)


def _add_sales(database_url: str, n: int) -> None:
    """Settled sales of today for the cashier, written straight to the server's database."""
    engine = db_engine(database_url)
    table = Payment.__table__
    try:
        with engine.begin() as conn:
            cashier = conn.execute(
                sa.select(User.__table__.c.id).where(User.__table__.c.username == "cashier")
            ).scalar_one()
            till = conn.execute(sa.text("SELECT id FROM tills ORDER BY id LIMIT 1")).scalar_one()
            now = utcnow()
            for i in range(n):
                paid = i % 3 != 0
                conn.execute(
                    table.insert().values(
                        till_id=till, cashier_id=cashier, idempotency_key=uuid.uuid4().hex,
                        sale_ref=uuid.uuid4().hex, phone=f"2547112{i:05d}", amount_kes=100 + i,
                        account_reference="Sale", transaction_desc="Payment",
                        status="paid" if paid else "failed",
                        result_code="0" if paid else "1032",
                        receipt_number=f"UL{i:08d}" if paid else None,
                        checkout_request_id=f"ws_CO_FILL{uuid.uuid4().hex[:12]}",
                        created_at=now, updated_at=now, pushed_at=now, push_started_at=now,
                        final_at=now, query_count=0, version=1,
                    )
                )  # fmt: skip
    finally:
        engine.dispose()
