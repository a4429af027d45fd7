"""The cashier's counter in a real browser: keyboard, live rows, resend, cancel, receipts, size."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import requests
import sqlalchemy as sa
from playwright.sync_api import expect

from app.models import Payment
from tests.browser.conftest import ARTIFACTS, DEMO_PASSWORD, db_engine, login

pytestmark = pytest.mark.browser

PHONE = "0708374149"
MSISDN = "254708374149"
MASKED = "2547••••149"


def _send(page, phone: str, amount: str) -> None:
    # After a send the form is swapped in by htmx; wait until htmx has wired it, or Enter
    # takes the plain-form path (correct too, but a full page load these tests don't expect).
    page.wait_for_function("() => !!document.querySelector('#pay-form')['htmx-internal-data']")
    page.fill("#phone", phone)
    page.fill("#amount", amount)
    page.press("#amount", "Enter")


def _rows(page):
    return page.locator("#payment-rows li.row")


def _seconds(locator) -> int:
    return int(locator.inner_text().strip())


def _payments(database_url: str) -> list:
    engine = db_engine(database_url)
    try:
        with engine.connect() as conn:
            table = Payment.__table__
            return list(conn.execute(sa.select(table).order_by(table.c.id)).mappings())
    finally:
        engine.dispose()


def _age_payments(database_url: str, by: timedelta) -> None:
    """Move every payment's times into the past, as if `by` had gone by."""
    engine = db_engine(database_url)
    table = Payment.__table__
    columns = ("created_at", "pushed_at", "push_started_at", "final_at")
    try:
        with engine.begin() as conn:
            for row in conn.execute(sa.select(table.c.id, *(table.c[c] for c in columns))):
                older = {c: row._mapping[c] - by for c in columns if row._mapping[c] is not None}
                conn.execute(sa.update(table).where(table.c.id == row.id).values(older))
    finally:
        engine.dispose()


def _open_phone(page, base: str):
    """The customer's virtual phone, in another tab (opened after logging in: its polling
    must not race the login for the session cookie)."""
    phone_page = page.context.new_page()
    phone_page.goto(f"{base}/simulator/phone?phone={PHONE}")
    expect(phone_page.locator("#phone-screen")).to_be_visible()
    page.bring_to_front()
    return phone_page


def test_keyboard_send_paid_search_and_receipt(server, page, backend):
    login(page, server, "cashier")
    phone = page.locator("#phone")
    expect(phone).to_be_focused()
    expect(page.locator("#shortcuts")).to_contain_text("Alt")

    page.keyboard.type(PHONE)
    page.keyboard.press("Tab")
    page.keyboard.type("150")
    page.keyboard.press("Enter")

    row = _rows(page).first
    expect(row).to_have_attribute("data-phase", re.compile("sending|pin"))
    expect(phone).to_have_value("")
    expect(phone).to_be_focused()  # ready for the next customer
    expect(row.locator(".phone")).to_have_text(MASKED)
    expect(row).to_have_attribute("data-status", "paid", timeout=20_000)
    expect(page.locator("#announcer")).to_contain_text("Paid")
    expect(page.locator("#today-paid-count")).to_have_text("1")
    expect(page.locator("#today-paid-kes")).to_have_text("KES 150")
    receipt = row.locator(".receipt strong").inner_text()
    assert PHONE not in page.content() and "0708 374 149" not in page.content()

    # "/" jumps to the search, which filters today's rows on the server; Esc goes back.
    phone.focus()
    page.keyboard.press("/")
    expect(page.locator("#q")).to_be_focused()
    expect(phone).to_have_value("")  # the slash was not typed into the phone box
    page.keyboard.type("NOSUCH9")
    expect(page.locator("#no-payments")).to_be_visible()
    expect(page.locator("#no-payments")).to_contain_text("NOSUCH9")
    page.fill("#q", receipt.lower())
    expect(_rows(page)).to_have_count(1)
    expect(page.locator("#no-payments")).to_be_hidden()
    page.keyboard.press("Escape")
    expect(phone).to_be_focused()

    _rows(page).first.get_by_role("link", name="Receipt").click()
    slip = page.locator(".slip")
    expect(slip).to_contain_text(receipt)
    expect(slip).to_contain_text("KES 150")
    expect(slip).to_contain_text(MASKED)
    expect(slip).to_contain_text("cashier")
    expect(slip).to_contain_text("174379")
    page.emulate_media(media="print")
    expect(page.locator("header.top")).to_be_hidden()
    expect(page.locator(".slip-tools")).to_be_hidden()
    assert page.evaluate("document.querySelector('.slip').getBoundingClientRect().width") < 310
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"receipt-80mm-print-{backend}.png"), full_page=True)
    page.emulate_media(media="screen")
    page.get_by_role("link", name="58 mm").click()
    expect(page.locator(".slip")).to_have_class(re.compile("slip-58"))


def test_first_load_is_small_fits_360_and_labels_every_input(live_server, browser, backend):
    context = browser.new_context(viewport={"width": 360, "height": 740})
    try:
        # Log in through the API so the cashier page is the first thing this browser loads.
        api = context.request
        form = api.get(f"{live_server.base}/login").text()
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', form).group(1)
        api.post(
            f"{live_server.base}/login",
            form={"csrf_token": token, "username": "cashier", "password": DEMO_PASSWORD},
        )
        page = context.new_page()
        page.set_default_timeout(15_000)
        responses = []
        page.on("response", lambda r: responses.append(r))
        page.goto(f"{live_server.base}/cashier/")
        page.wait_for_load_state("networkidle")
        fetched = [(r.url, len(r.body())) for r in responses]
        total = sum(size for _, size in fetched)
        kinds = {re.sub(r"\?.*", "", url).rsplit("/", 1)[-1] for url, _ in fetched}
        assert {"", "app.css", "counter.js", "htmx-2.0.11.min.js"} <= kinds, fetched
        assert all(url.startswith(live_server.base) for url, _ in fetched), fetched
        transfer = page.evaluate(
            "performance.getEntriesByType('navigation').concat("
            "performance.getEntriesByType('resource')).reduce((n, e) => n + e.transferSize, 0)"
        )
        print(f"\ncashier page first load: {total} body bytes, {transfer} transferred")
        assert total < 100_000 and transfer < 100_000, (total, transfer, fetched)

        unlabelled = page.evaluate(
            "[...document.querySelectorAll('input:not([type=hidden]), select')]"
            ".filter(e => e.labels.length === 0).map(e => e.id || e.name)"
        )
        assert unlabelled == []

        _send(page, PHONE, "75")
        expect(_rows(page).first).to_have_attribute("data-status", "paid", timeout=20_000)
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"cashier-360-{backend}.png"), full_page=True)
        page.set_viewport_size({"width": 1280, "height": 800})
        page.screenshot(path=str(ARTIFACTS / f"cashier-1280-{backend}.png"), full_page=True)
    finally:
        context.close()


def test_cancel_on_phone_then_resend_after_the_wait_is_paid(live_server, page, backend):
    base = live_server.base
    login(page, base, "cashier")
    phone_page = _open_phone(page, base)
    _send(page, PHONE, "150")
    first = page.locator("#" + _rows(page).first.get_attribute("id"))
    expect(first).to_have_attribute("data-phase", "pin")
    pin_left = first.locator(".pin-countdown .countdown")
    assert 50 <= _seconds(pin_left) <= 60

    phone_page.locator("#pin-cancel").click()  # the customer cancels on the phone
    expect(first).to_have_attribute("data-status", "failed", timeout=15_000)
    expect(first.locator(".msg")).to_contain_text("cancelled on their phone")

    # M-Pesa refuses the same amount to the same phone for 2 minutes: the button says so.
    resend = first.locator(".resend-form button")
    expect(resend).to_be_disabled()
    wait = resend.locator(".countdown")
    before = _seconds(wait)
    assert 100 <= before <= 120
    expect(first.locator(".wait-note")).to_contain_text("same amount")
    # A live countdown: it goes down by itself (polled, since a loaded CI machine can
    # delay the page's one-second timer).
    for _ in range(50):
        page.wait_for_timeout(200)
        if _seconds(wait) < before:
            break
    assert _seconds(wait) < before
    page.keyboard.press("Alt+KeyR")  # too early: the shortcut says how long, sends nothing
    expect(page.locator("#announcer")).to_contain_text("Try again in")
    expect(first.locator(".wait-note")).to_have_class(re.compile("nudge"))
    expect(page.locator("#phone")).to_be_focused()
    expect(_rows(page)).to_have_count(1)

    # Drive time: the first attempt was pushed more than 2 minutes ago.
    _age_payments(live_server.database_url, timedelta(seconds=150))
    # The simulator keeps its own clock for ResultCode 17: arm a plain success for this phone.
    armed = requests.post(
        f"{base}/simulator/_control/next",
        json={"scenario": "success", "phone": MSISDN},
        timeout=5,
    )
    assert armed.status_code == 200, armed.text

    page.reload()
    expect(page.locator("#phone")).to_be_focused()
    expect(first.locator(".resend-form button")).to_be_enabled()
    page.keyboard.press("Alt+KeyR")
    expect(_rows(page)).to_have_count(2)
    second = _rows(page).first
    expect(second).to_have_attribute("data-phase", "pin")
    expect(first).to_contain_text("Sent again")
    expect(page.locator("#phone")).to_be_focused()

    phone_page.locator("#pin").fill("1234")
    phone_page.locator("#pin-ok").click()  # this time the customer pays
    expect(second).to_have_attribute("data-status", "paid", timeout=15_000)
    expect(page.locator("#today-paid-count")).to_have_text("1")

    attempts = _payments(live_server.database_url)
    assert [a["status"] for a in attempts] == ["failed", "paid"]
    assert attempts[1]["resend_of_id"] == attempts[0]["id"]
    assert attempts[1]["sale_ref"] == attempts[0]["sale_ref"]


def test_cancel_here_then_customer_pays_shows_paid_after_cancel(live_server, page, backend):
    base = live_server.base
    login(page, base, "cashier")
    phone_page = _open_phone(page, base)
    _send(page, PHONE, "320")
    row = _rows(page).first
    expect(row).to_have_attribute("data-phase", "pin")
    row.get_by_role("button", name="Cancel here").click()
    expect(row).to_have_attribute("data-phase", "cancelled")
    expect(row.locator(".badge")).to_have_text("Cancelled here")
    expect(page.locator("#phone")).to_be_focused()

    phone_page.locator("#pin").fill("1234")
    phone_page.locator("#pin-ok").click()  # the customer pays anyway
    expect(row).to_have_attribute("data-phase", "paid_after_cancel", timeout=15_000)
    expect(row.locator("[role=alert]")).to_contain_text("Paid after cancel")
    expect(page.locator("#announcer")).to_contain_text("Paid after cancel")


@pytest.mark.server_env(
    PESADESK_GIVE_UP_AFTER="3",
    PESADESK_QUERY_FIRST_DELAY="6",
    PESADESK_RECONCILE_INTERVAL="3",
    PESADESK_RECONCILE_JOB_INTERVAL="1",
)
def test_lost_callback_is_unconfirmed_then_resolved_by_the_poller(server, page, backend):
    login(page, server, "cashier")
    _send(page, PHONE, "4040")  # the simulator pays but never calls back
    row = _rows(page).first
    expect(row).to_have_attribute("data-status", "unconfirmed", timeout=15_000)
    expect(row.locator(".msg")).to_contain_text("money may have moved; checking automatically")
    expect(page.locator("#announcer")).to_contain_text("Unconfirmed")
    expect(row).to_have_attribute("data-status", "paid", timeout=25_000)
    expect(row.locator(".msg")).to_contain_text("no receipt number yet")


def test_enter_pressed_twice_sends_one_payment_and_wrong_pin_says_what_to_do(
    live_server, page, backend
):
    login(page, live_server.base, "cashier")
    page.fill("#phone", "0712345678")
    page.fill("#amount", "2001")  # the simulator's customer types a wrong PIN
    page.press("#amount", "Enter")
    page.press("#amount", "Enter")
    expect(_rows(page)).to_have_count(1)
    page.wait_for_timeout(1_000)  # room for a second request, had one been sent
    expect(_rows(page)).to_have_count(1)
    pushes = requests.get(f"{live_server.base}/simulator/_control/pushes", timeout=5).json()
    pushes = pushes if isinstance(pushes, list) else pushes["pushes"]
    assert [p["amount"] for p in pushes if p["phone"] == "254712345678"] == [2001]
    assert len(_payments(live_server.database_url)) == 1

    row = _rows(page).first
    expect(row).to_have_attribute("data-status", "failed", timeout=20_000)
    expect(row.locator(".badge")).to_have_text("Failed")
    expect(row.locator(".msg")).to_contain_text("Wrong PIN entered")
    expect(row.locator(".resend-form button")).to_be_visible()
    expect(row.locator(".raw")).to_have_count(0)  # Safaricom's own text is for supervisors
    expect(page.locator("#announcer")).to_contain_text("Wrong PIN entered")


def test_swahili_counter(server, page, backend):
    login(page, server, "cashier")
    page.select_option("#language", "sw")  # submits by itself
    expect(page.locator("html")).to_have_attribute("lang", "sw")
    expect(page.locator("label[for=phone]")).to_have_text("Simu ya mteja")
    expect(page.locator("#pay-form button[type=submit]")).to_contain_text("Tuma ombi")
    expect(page.locator("#phone")).to_be_focused()
    _send(page, PHONE, "1032")
    row = _rows(page).first
    expect(row.locator(".badge")).to_have_text(re.compile("Inatuma|Inasubiri PIN"))
    expect(row).to_have_attribute("data-status", "failed", timeout=20_000)
    expect(row.locator(".badge")).to_have_text("Imeshindwa")
    expect(row.locator(".msg")).to_contain_text("Mteja ameghairi kwenye simu yake.")
    expect(row.locator(".resend-form button")).to_contain_text("Tuma tena")
    _send(page, PHONE, "99.50")
    expect(page.locator("#pay-error")).to_have_text(
        "Shilingi kamili tu, bila desimali: M-PESA haipokei senti."
    )
    expect(page.locator("#amount")).to_be_focused()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"cashier-sw-{backend}.png"), full_page=True)
