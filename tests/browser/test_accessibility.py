"""Every page clean under axe-core's WCAG 2.2 AA rules; the counter by keyboard; changes said."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser, BrowserContext, Locator, Page, expect

from app.models import Payment, RawCallback, User
from app.models.types import utcnow
from tests.browser.conftest import ARTIFACTS, ROOT, LiveServer, db_engine, login
from tests.browser.test_counter import PHONE, _open_phone, _rows, _send

pytestmark = pytest.mark.browser

# Installed by `make axe` (a prerequisite of `make test`), pinned there; see the Makefile.
AXE_DIR = ROOT / ".cache" / "axe" / "node_modules" / "axe-core"
AXE_JS = AXE_DIR / "axe.min.js"
WCAG_22_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
SIZES = {"1280x800": {"width": 1280, "height": 800}, "360x740": {"width": 360, "height": 740}}
# Answered by the simulator by itself; PHONE is kept for the virtual phone, whose open page
# makes its pushes wait for a PIN (app/simulator/templates/simulator/phone.html). One phone
# per open sale: M-Pesa allows one live prompt per phone (app/payments/guards.py).
OTHER_PHONE = "0711222333"
OTHER_PHONES = [f"07112223{n:02d}" for n in range(10)]

# axe files contrast it cannot measure (text overlapping another box, mostly overflow) under
# "incomplete"; that hid white-on-white buttons on /admin/callbacks, so it counts here too.
# Except the text drawn inside a chart's SVG, which axe never measures (the SVG is an image
# to it): those colours are fixed in static/charts.css and checked by
# tests/reports/test_charts.py::test_chart_colours_meet_wcag_contrast_on_white.
RUN_AXE = """tags => axe.run(document, {runOnly: {type: 'tag', values: tags}}).then(r =>
  r.violations.concat(r.incomplete.filter(v => v.id === 'color-contrast')
    .map(v => ({...v, nodes: v.nodes.filter(n => !document.querySelector(n.target.join(' '))
      ?.closest('svg.chart-svg'))}))
    .filter(v => v.nodes.length)
    .map(v => ({...v, id: 'color-contrast (not measurable)'})))
  .map(v => ({id: v.id, impact: v.impact, help: v.help, url: v.helpUrl,
    nodes: v.nodes.map(n => ({target: n.target.join(' '), summary: n.failureSummary}))})))"""
# WCAG 1.4.10 (reflow): nothing makes the page scroll sideways, not even at 360 px.
SIDEWAYS = "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"


def _axe_script() -> Path:
    """axe-core's script. Missing means the run was not started by `make test`: the test
    fails (in its own body, so it reads as FAILED) and says how to get it."""
    if not AXE_JS.is_file():
        pytest.fail(
            f"axe-core is missing ({AXE_JS.relative_to(ROOT)}). `make test` installs it from the "
            "npm registry (or run `make axe`); the accessibility tests are never skipped.",
            pytrace=False,
        )
    return AXE_JS


class Audit:
    """Runs axe on page after page, at both screen sizes, and keeps every violation, so one
    failing run lists all of them instead of the first."""

    def __init__(self, test_name: str) -> None:
        self.test_name = test_name
        self.pages: list[str] = []
        self.found: list[str] = []

    def check(self, page: Page, name: str) -> None:
        axe = _axe_script()
        page.wait_for_load_state()
        for size_name, size in SIZES.items():
            page.set_viewport_size(size)
            if not page.evaluate("() => typeof window.axe === 'object'"):
                # Evaluated, not added as a <script> tag: the page's CSP (app/security.py)
                # refuses inline scripts, and the test must not weaken it.
                page.evaluate(axe.read_text())
            where = f"{name} @ {size_name} ({page.url})"
            self.pages.append(where)
            found = len(self.found)
            for v in page.evaluate(RUN_AXE, WCAG_22_AA):
                lines = [f"- {where}: {v['id']} [{v['impact']}] {v['help']} ({v['url']})"]
                for node in v["nodes"][:8]:
                    summary = " ".join(node["summary"].split())
                    lines.append(f"    {node['target']}: {summary[:300]}")
                if len(v["nodes"]) > 8:
                    lines.append(f"    … and {len(v['nodes']) - 8} more elements")
                self.found.append("\n".join(lines))
            if (sideways := page.evaluate(SIDEWAYS)) > 0:
                self.found.append(f"- {where}: reflow: the page scrolls sideways by {sideways}px")
            if len(self.found) > found:
                ARTIFACTS.mkdir(exist_ok=True)
                slug = re.sub(r"[^a-z0-9]+", "-", f"{self.test_name} {name} {size_name}".lower())
                page.screenshot(path=str(ARTIFACTS / f"a11y-{slug}.png"), full_page=True)
        page.set_viewport_size(SIZES["1280x800"])

    def assert_clean(self) -> None:
        version = json.loads((AXE_DIR / "package.json").read_text())["version"]
        assert not self.found, (
            f"axe-core {version} (WCAG 2.2 AA) and the reflow check found "
            f"{len(self.found)} violation(s) "
            f"on {len(self.pages)} page views:\n" + "\n".join(self.found)
        )


@pytest.fixture
def audit(request) -> Audit:
    return Audit(request.node.name)


@pytest.fixture
def contexts(browser: Browser) -> Iterator[list[BrowserContext]]:
    """Browser contexts a test opens (one per role); all closed afterwards."""
    opened: list[BrowserContext] = []
    yield opened
    for context in opened:
        context.close()


def _page_as(
    browser: Browser, contexts: list[BrowserContext], base: str, user: str | None, **options
) -> Page:
    context = browser.new_context(viewport=SIZES["1280x800"], **options)
    contexts.append(context)
    page = context.new_page()
    page.set_default_timeout(15_000)
    if user is not None:
        login(page, base, user)
    return page


def _add_orphan(database_url: str, amount: int) -> None:
    """A successful callback that matched no sale, straight into the server's database."""
    engine = db_engine(database_url)
    try:
        with engine.begin() as conn:
            till = conn.execute(sa.text("SELECT id FROM tills ORDER BY id LIMIT 1")).scalar_one()
            conn.execute(
                RawCallback.__table__.insert().values(
                    till_id=till, body=b"{}", outcome="orphan", result_code="0", amount=amount,
                    receipt_number="QKORPHAN01", phone="254712345678", received_at=utcnow(),
                )
            )  # fmt: skip
    finally:
        engine.dispose()


def _add_payment(database_url: str, amount: int, status: str, receipt: str | None) -> int:
    """A payment of today for the cashier, written straight to the server's database, in a
    state the simulator does not reach quickly (the poller leaves it alone: no next query)."""
    engine = db_engine(database_url)
    table = Payment.__table__
    users = User.__table__
    try:
        with engine.begin() as conn:
            cashier = conn.execute(
                sa.select(users.c.id).where(users.c.username == "cashier")
            ).scalar_one()
            till = conn.execute(sa.text("SELECT id FROM tills ORDER BY id LIMIT 1")).scalar_one()
            now = utcnow()
            return conn.execute(
                table.insert()
                .values(
                    till_id=till, cashier_id=cashier, idempotency_key=uuid.uuid4().hex,
                    sale_ref=uuid.uuid4().hex, phone="254711000777", amount_kes=amount,
                    account_reference="Sale", transaction_desc="Payment", status=status,
                    result_code="0" if status == "paid" else None, receipt_number=receipt,
                    checkout_request_id=f"ws_CO_A11Y{uuid.uuid4().hex[:12]}",
                    created_at=now, updated_at=now, pushed_at=now, push_started_at=now,
                    final_at=now if status == "paid" else None, query_count=3, version=1,
                )
                .returning(table.c.id)
            ).scalar_one()  # fmt: skip
    finally:
        engine.dispose()


def _sale(page: Page, phone: str, amount: str) -> tuple[int, Locator]:
    """Send a sale through the form; its payment id and its row (rows are newest first)."""
    before = _rows(page).count()
    _send(page, phone, amount)
    expect(_rows(page)).to_have_count(before + 1)
    row_id = _rows(page).first.get_attribute("id")
    return int(row_id.removeprefix("payment-")), page.locator(f"#{row_id}")


def test_public_pages_are_clean(live_server: LiveServer, browser, contexts, audit: Audit):
    base = live_server.base
    for language in ("en", "sw"):
        page = _page_as(browser, contexts, base, None, locale=language)
        page.goto(f"{base}/login")
        expect(page.locator("html")).to_have_attribute("lang", language)
        audit.check(page, f"login ({language})")
        page.goto(f"{base}/no/such/page")
        audit.check(page, f"404, logged out ({language})")
    page.goto(f"{base}/simulator/phone")
    audit.check(page, "virtual phone, no number")
    page.goto(f"{base}/simulator/phone?phone={PHONE}")
    expect(page.locator("#phone-screen")).to_be_visible()
    audit.check(page, "virtual phone, idle")
    audit.assert_clean()


# The first status query comes after 8 s, so a sale cancelled here and then paid (no callback:
# amount 4040, app/simulator/scenarios.py) reaches "paid after cancel" within the test.
@pytest.mark.server_env(PESADESK_QUERY_FIRST_DELAY="8")
def test_cashier_pages_are_clean_in_english_and_swahili(
    live_server: LiveServer, browser, contexts, audit: Audit
):
    base = live_server.base
    page = _page_as(browser, contexts, base, "cashier")
    phone = _page_as(browser, contexts, base, None)
    phone.goto(f"{base}/simulator/phone?phone={PHONE}")
    expect(phone.locator("#phone-screen")).to_be_visible()

    paid, paid_row = _sale(page, OTHER_PHONES[0], "150")  # paid, with its receipt
    failed, failed_row = _sale(page, OTHER_PHONES[1], "1032")  # cancelled: Resend waits
    _, rejected = _sale(page, OTHER_PHONES[2], "9001")  # refused by the gateway
    _, late = _sale(page, OTHER_PHONES[3], "4040")  # paid, no callback: cancelled here first
    expect(late).to_have_attribute("data-phase", "pin")  # sent: cancelling it here is local
    late.get_by_role("button", name="Cancel here").click()
    _, pin = _sale(page, PHONE, "275")  # waits on the virtual phone for the PIN

    expect(paid_row).to_have_attribute("data-status", "paid")
    expect(failed_row).to_have_attribute("data-status", "failed", timeout=20_000)
    expect(failed_row.locator(".resend-form button")).to_be_disabled()
    expect(rejected).to_have_attribute("data-status", "rejected")
    expect(late).to_have_attribute("data-phase", "paid_after_cancel", timeout=20_000)
    expect(pin).to_have_attribute("data-phase", "pin")
    expect(phone.locator("#pin")).to_be_visible()
    audit.check(phone, "virtual phone, PIN prompt")

    _add_payment(live_server.database_url, 505, "unconfirmed", None)
    page.reload()
    expect(_rows(page)).to_have_count(6)
    expect(page.locator("#payment-rows [data-status=unconfirmed]")).to_have_count(1)

    for language in ("en", "sw"):
        if language == "sw":
            page.goto(f"{base}/cashier/")
            page.select_option("#language", "sw")  # submits by itself
            expect(page.locator("html")).to_have_attribute("lang", "sw")
        audit.check(page, f"counter, six rows ({language})")
        page.fill("#q", "NOSUCH9")
        expect(page.locator("#no-payments")).to_be_visible()
        audit.check(page, f"counter, search finds nothing ({language})")
        page.goto(f"{base}/cashier/payments/{paid}/receipt")
        audit.check(page, f"receipt 80 mm ({language})")
        page.goto(f"{base}/cashier/payments/{paid}/receipt?width=58")
        audit.check(page, f"receipt 58 mm ({language})")
        page.goto(f"{base}/cashier/payments/{failed}/receipt")
        audit.check(page, f"404, no receipt for a failed sale ({language})")
        page.goto(f"{base}/owner/report")
        audit.check(page, f"403, the owner's report ({language})")
    phone.locator("#pin-cancel").click()
    expect(phone.locator("#result-text")).to_be_visible()
    audit.check(phone, "virtual phone, result")
    audit.assert_clean()


def test_owner_and_admin_pages_are_clean(live_server: LiveServer, browser, contexts, audit):
    base = live_server.base
    cashier = _page_as(browser, contexts, base, "cashier")
    paid, paid_row = _sale(cashier, OTHER_PHONES[4], "150")
    conflict, _ = _sale(cashier, OTHER_PHONES[5], "6032")  # paid, then a contradicting callback
    _, failed_row = _sale(cashier, OTHER_PHONES[6], "1032")
    expect(paid_row).to_have_attribute("data-status", "paid")
    expect(failed_row).to_have_attribute("data-status", "failed", timeout=20_000)
    unconfirmed = _add_payment(live_server.database_url, 505, "unconfirmed", None)
    no_receipt = _add_payment(live_server.database_url, 606, "paid", None)

    owner = _page_as(browser, contexts, base, "owner")
    owner.goto(f"{base}/owner/report")
    expect(owner.locator("#receipts tbody tr")).to_have_count(5)
    audit.check(owner, "report (owner)")
    for payment in (paid, conflict):
        owner.goto(f"{base}/owner/payments/{payment}")
        audit.check(owner, f"payment {payment} timeline (owner)")
    for path in (
        "/owner/takings",
        "/owner/takings?range=7d",
        "/owner/takings?from=2026-13-01",
        "/owner/payments?range=7d",
        "/owner/payments?q=nothing-matches",
        "/owner/orphans?range=7d",
        "/owner/close",
        "/owner/close?paper=80",
        "/owner/statements",
    ):
        owner.goto(base + path)
        audit.check(owner, f"{path} (owner)")
    # On A4 paper (794 px at 96 dpi): the filters are not printed and nothing is cut off.
    owner.emulate_media(media="print")
    owner.set_viewport_size({"width": 794, "height": 1123})
    for path, screen_only in (
        ("/owner/takings?range=7d", "#period-form"),
        ("/owner/payments?range=7d", "#period-form"),
        ("/owner/close", "#close-choose"),
    ):
        owner.goto(base + path)
        expect(owner.locator(screen_only)).to_be_hidden()
        assert owner.evaluate(SIDEWAYS) <= 0, f"{path} is wider than A4"
    owner.emulate_media(media="screen")
    owner.goto(f"{base}/owner/report?date=2001-01-01")
    audit.check(owner, "report of an empty day (owner)")
    owner.goto(f"{base}/owner/report?date=someday")
    audit.check(owner, "report, bad date (owner)")

    admin = _page_as(browser, contexts, base, "admin")
    admin.goto(f"{base}/owner/report")
    audit.check(admin, "report (admin)")
    for payment in (paid, conflict, unconfirmed, no_receipt):
        admin.goto(f"{base}/owner/payments/{payment}")
        audit.check(admin, f"payment {payment} timeline (admin)")
    expect(admin.locator("#attach-receipt form")).to_be_visible()
    admin.goto(f"{base}/owner/payments/{unconfirmed}")
    expect(admin.locator("#resolve form")).to_be_visible()
    for path in (
        "/admin/till",
        "/admin/tills",
        "/admin/tills/new",
        "/admin/users",
        "/admin/callbacks",
        "/admin/audit",
        "/account/password",
        "/account/two-factor",
    ):
        admin.goto(base + path)
        audit.check(admin, path)
    admin.goto(f"{base}/admin/tills")
    admin.locator("table a[href^='/admin/tills/']").first.click()
    audit.check(admin, "/admin/tills/<id>")
    admin.locator("#test-connection").click()  # the answer is announced (aria-live)
    expect(admin.locator("#check-verdict")).to_be_visible()
    audit.check(admin, "till page with a connection check")
    _add_orphan(live_server.database_url, 707)
    admin.goto(f"{base}/owner/orphans")
    expect(admin.locator("#orphans tbody tr")).to_have_count(1)
    audit.check(admin, "/owner/orphans with a decision to make (admin)")
    admin.goto(f"{base}/admin/callbacks?outcome=nosuch&q=nothing")
    audit.check(admin, "/admin/callbacks, nothing matches")
    admin.goto(f"{base}/admin/callbacks")
    admin.locator("#inbox a", has_text="View").first.click()
    expect(admin.locator("#raw-body")).to_be_visible()
    audit.check(admin, "/admin/callbacks/<id>")
    admin.goto(f"{base}/admin/callbacks/999999")
    audit.check(admin, "404 (admin)")

    # With Swahili chosen every page is Swahili and says so (WCAG 3.1.1).
    admin.select_option("#language", "sw")  # submits by itself
    expect(admin.locator("html")).to_have_attribute("lang", "sw")  # the error page is translated
    for path in (
        "/owner/report",
        f"/owner/payments/{paid}",
        "/admin/users",
        "/admin/callbacks",
        "/admin/tills",
        "/admin/audit",
    ):
        admin.goto(base + path)
        expect(admin.locator("html")).to_have_attribute("lang", "sw")
        audit.check(admin, f"{path} (admin, Swahili)")
    audit.assert_clean()


def _focused(page: Page) -> str:
    """What has the focus, as "tag#id.class text" (for readable failures)."""
    return page.evaluate(
        "() => { const e = document.activeElement; return e.tagName.toLowerCase() + "
        "(e.id ? '#' + e.id : '') + (e.className ? '.' + e.className : '') + ' ' + "
        "(e.textContent || '').trim().slice(0, 30); }"
    )


def _outline(page: Page) -> dict:
    """How the focused element shows its focus (app.css: a yellow ring with a dark edge)."""
    return page.evaluate(
        "() => { const e = document.activeElement, s = getComputedStyle(e); return {"
        "visible: e.matches(':focus-visible'), style: s.outlineStyle,"
        "width: parseFloat(s.outlineWidth), edge: s.boxShadow}; }"
    )


def _tab_to(page: Page, selector: str, limit: int = 40, back: bool = False) -> list[dict]:
    """Press Tab (or Shift+Tab) until `selector` has the focus, checking on the way that every
    element reached shows it has the focus."""
    seen = []
    for _ in range(limit):
        page.keyboard.press("Shift+Tab" if back else "Tab")
        step = {"at": _focused(page), **_outline(page)}
        seen.append(step)
        shown = step["visible"] and step["style"] != "none" and step["width"] >= 2
        assert shown and step["edge"] != "none", f"focus not shown clearly: {seen}"
        if page.evaluate("s => document.activeElement.matches(s)", selector):
            return seen
    raise AssertionError(f"Tab never reached {selector}; went through {seen}")


# The first status query comes after 8 s: a sale cancelled here then turns "paid after cancel"
# by itself within the test (amount 4040 has no callback, app/simulator/scenarios.py).
@pytest.mark.server_env(PESADESK_QUERY_FIRST_DELAY="8")
def test_the_counter_works_by_keyboard_alone_and_says_each_change(server, page: Page):
    login(page, server, "cashier")
    phone = page.locator("#phone")
    expect(phone).to_be_focused()
    announcer = page.locator("#announcer")
    expect(announcer).to_have_attribute("role", "status")
    expect(announcer).to_have_attribute("aria-live", "polite")

    page.keyboard.type(OTHER_PHONE)
    page.keyboard.press("Tab")
    expect(page.locator("#amount")).to_be_focused()
    page.keyboard.type("4040")
    page.keyboard.press("Enter")
    expect(_rows(page)).to_have_count(1)
    row = page.locator("#" + _rows(page).first.get_attribute("id"))
    expect(phone).to_be_focused()  # ready for the next customer
    expect(row).to_have_attribute("data-phase", "pin")
    expect(announcer).to_contain_text("Waiting for PIN")

    _tab_to(page, "#payment-rows .cancel-form button")
    cancel = row.get_by_role("button", name="Cancel here")
    expect(cancel).to_be_focused()
    # The row refreshes itself while the customer has the prompt: the focus stays put.
    row.evaluate("el => el.classList.add('before-refresh')")
    expect(row).not_to_have_class(re.compile("before-refresh"))
    expect(cancel).to_be_focused()
    page.keyboard.press("Enter")
    expect(row).to_have_attribute("data-phase", "cancelled")
    expect(announcer).to_contain_text("Cancelled here")
    expect(phone).to_be_focused()

    # The customer paid anyway: the row changes by itself, and the change is said.
    expect(row).to_have_attribute("data-phase", "paid_after_cancel", timeout=20_000)
    expect(announcer).to_contain_text("Paid after cancel")

    # A sale the customer cancels on the phone while the cashier is on its Cancel button: the
    # change is said, and the button being gone, the cashier is back in the phone box.
    phone_page = _open_phone(page, server)
    page.keyboard.type(PHONE)
    page.keyboard.press("Tab")
    page.keyboard.type("200")
    page.keyboard.press("Enter")
    expect(_rows(page)).to_have_count(2)
    failed = page.locator("#" + _rows(page).first.get_attribute("id"))
    expect(failed).to_have_attribute("data-phase", "pin")
    _tab_to(page, "#payment-rows .cancel-form button")
    expect(failed.get_by_role("button", name="Cancel here")).to_be_focused()
    phone_page.locator("#pin-cancel").click()
    expect(failed).to_have_attribute("data-status", "failed", timeout=15_000)
    expect(announcer).to_contain_text(re.compile(r"Failed\. Customer cancelled on their phone"))
    expect(phone).to_be_focused()

    # Shift+Tab walks back through the header to the language list. Its arrow keys only
    # choose (no reload under the cashier); Enter switches. Esc comes back to the phone box.
    _tab_to(page, "#language", back=True)
    page.evaluate("window.stillHere = true")
    page.keyboard.press("ArrowDown")
    expect(page.locator("#language")).to_have_value("sw")
    expect(page.locator("#language-form button")).to_be_visible()
    page.wait_for_timeout(500)  # room for a reload, had the list sent itself
    assert page.evaluate("window.stillHere === true")
    page.keyboard.press("ArrowUp")
    expect(page.locator("#language-form button")).to_be_hidden()  # back to the language in use
    page.keyboard.press("Escape")
    expect(phone).to_be_focused()
    _tab_to(page, "#language", back=True)
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    expect(page.locator("html")).to_have_attribute("lang", "sw")
    expect(phone).to_be_focused()

    # The paid row's receipt, reached and opened by keyboard.
    _tab_to(page, f"#receipt-link-{row.get_attribute('id').removeprefix('payment-')}")
    page.keyboard.press("Enter")
    expect(page.locator(".slip")).to_be_visible()
