"""In Chromium, under the real Content-Security-Policy: every page works and nothing is refused."""

from __future__ import annotations

import re
import time

import pytest
import requests
from playwright.sync_api import ConsoleMessage, Page, Response, expect

from app.security import CONTENT_SECURITY_POLICY
from tests.browser.conftest import login
from tests.browser.test_counter import PHONE, _open_phone, _rows, _send

pytestmark = pytest.mark.browser

# Runs before any page script, in every page of the context (an init script is not subject to
# the page's CSP). It reports to Python through a binding, so a report survives navigation.
WATCH_CSP = """
document.addEventListener("securitypolicyviolation", (e) => {
  window.reportCspViolation(
    `${location.pathname}: ${e.effectiveDirective} refused ${e.blockedURI || "inline"}` +
    ` at ${e.sourceFile}:${e.lineNumber} ${e.sample}`);
});
"""


class Watch:
    """What the browser said while the test ran: CSP violations, console messages, errors."""

    def __init__(self, page: Page) -> None:
        self.violations: list[str] = []
        self.console: list[str] = []
        self.documents: list[Response] = []
        self.expected_404: set[str] = set()
        context = page.context
        context.expose_function("reportCspViolation", self._violation)
        context.add_init_script(WATCH_CSP)
        context.on("console", self._console)
        context.on("weberror", lambda error: self.console.append(f"pageerror: {error.error}"))
        context.on("response", self._response)

    def _violation(self, text: str) -> None:
        self.violations.append(text)

    def _console(self, message: ConsoleMessage) -> None:
        # Chromium's own autofill hints ("[DOM] Input elements should have autocomplete
        # attributes") are verbose-level advice, not something the page did.
        if message.type == "verbose":
            return
        if message.location.get("url") in self.expected_404:
            return  # "Failed to load resource" for the page we asked to be missing
        where = message.page.url if message.page else "?"
        self.console.append(f"{message.type}: {message.text} {message.location} on {where}")

    def _response(self, response: Response) -> None:
        if response.request.resource_type == "document":
            self.documents.append(response)

    def assert_quiet(self) -> None:
        assert not self.violations, "\n".join(self.violations)
        assert not self.console, "\n".join(self.console)
        # Every page seen was served under the policy (a page without it would prove nothing).
        assert self.documents
        unguarded = [
            r.url
            for r in self.documents
            if r.headers.get("content-security-policy") != CONTENT_SECURITY_POLICY
        ]
        assert unguarded == []


def _log_out(page: Page) -> None:
    page.get_by_role("button", name=re.compile("Log out")).click()
    expect(page.locator("#username")).to_be_visible()


def _nav_links(page: Page) -> list[str]:
    return page.locator("header nav a").evaluate_all("links => links.map(a => a.href)")


def test_every_page_under_the_policy(server, page, backend):
    watch = Watch(page)
    login_page = requests.get(f"{server}/login", timeout=5)
    assert login_page.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert login_page.headers["Cache-Control"] == "no-store"

    # The counter: a sale, answered with the PIN on the virtual phone, paid, its receipt.
    login(page, server, "cashier")
    phone = _open_phone(page, server)
    _send(page, PHONE, "150")
    row = page.locator("#" + _rows(page).first.get_attribute("id"))
    expect(phone.locator("#prompt-text")).to_contain_text("Pay KES 150")
    # The prompt was swapped in by htmx: wait until htmx has wired its form (see
    # tests/simulator/test_sim_phone_browser.py), so the answer goes through htmx too.
    phone.wait_for_function(
        "() => { const f = document.querySelector('#pin').form;"
        " return !!(f && f['htmx-internal-data']); }"
    )
    phone.fill("#pin", "1234")
    phone.press("#pin", "Enter")
    expect(phone.locator("#phone-screen")).to_have_attribute("data-kind", "result")
    expect(phone.locator("#result-text")).to_contain_text("Confirmed")
    expect(row).to_have_attribute("data-status", "paid", timeout=20_000)
    expect(page.locator("#today-paid-count")).to_have_text("1")
    phone.close()
    page.fill("#q", "150")  # the live search (htmx, with a trigger delay)
    expect(_rows(page)).to_have_count(1)
    page.locator("#q").press("Escape")
    row.get_by_role("link", name="Receipt").click()
    expect(page.locator(".slip")).to_be_visible()
    _log_out(page)

    # The owner: the report and the payment's timeline.
    login(page, server, "owner")
    expect(page.locator("#receipts")).to_be_visible()
    page.locator("#receipts tbody a").first.click()
    expect(page.locator("#events")).to_be_visible()
    _log_out(page)

    # The admin: every page in the menu, and a stored callback.
    login(page, server, "admin")
    links = _nav_links(page)
    assert any("/admin/callbacks" in link for link in links), links
    for link in links:
        page.goto(link)
        expect(page.locator("main h1").first).to_be_visible()
    page.goto(f"{server}/admin/callbacks")
    page.locator("#inbox").get_by_role("link", name="View").first.click()
    expect(page.locator("#raw-body")).to_be_visible()

    watch.expected_404.add(f"{server}/no-such-page")
    page.goto(f"{server}/no-such-page")
    expect(page.locator("#error")).to_be_visible()
    page.wait_for_timeout(500)  # a last poll or late event has its chance to be refused
    watch.assert_quiet()

    # The watch sees a refusal when there is one: inline style and script are both refused.
    page.evaluate(
        """() => {
          document.body.insertAdjacentHTML("beforeend", '<i style="color: red">x</i>');
          const s = document.createElement("script");
          s.textContent = "window.inlineRan = true";
          document.body.appendChild(s);
        }"""
    )
    deadline = time.monotonic() + 5
    while len(watch.violations) < 2 and time.monotonic() < deadline:
        page.wait_for_timeout(50)
    assert page.evaluate("window.inlineRan") is None
    refused = " ".join(watch.violations)
    assert "style-src-attr" in refused and "script-src-elem" in refused, watch.violations
