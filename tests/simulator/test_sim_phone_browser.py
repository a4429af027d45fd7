"""In Chromium: the virtual phone in a second tab beside the cashier page, PIN to Paid."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser import conftest as browser_layer

pytestmark = pytest.mark.browser

# The browser layer's fixtures (`make run`'s steps as a subprocess, Debian's Chromium),
# re-exported so this test runs exactly the server the cashier tests run.
live_server = browser_layer.live_server
server = browser_layer.server
browser = browser_layer.browser


def test_pin_on_the_virtual_phone_pays_the_cashiers_sale(server, browser, backend):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(15_000)
    try:
        cashier = context.new_page()
        browser_layer.login(cashier, server, "cashier")
        phone = context.new_page()  # the second tab
        phone.set_viewport_size({"width": 360, "height": 740})
        phone.goto(f"{server}/simulator/phone")
        phone.fill("#phone-number", "0708 374 149")
        phone.press("#phone-number", "Enter")
        screen = phone.locator("#phone-screen")
        expect(screen).to_have_attribute("data-kind", "idle")
        phone.evaluate("window.__noReload = 'kept'")
        # Nothing on the page is wider than the phone.
        assert phone.evaluate("document.documentElement.scrollWidth") <= 360

        cashier.fill("#phone", "0708374149")
        cashier.fill("#amount", "150")
        cashier.press("#amount", "Enter")
        row = cashier.locator("#payment-rows li.row").first
        expect(row).to_have_attribute("data-status", re.compile("initiating|pending"))

        # The phone's poll brings the prompt; the sale waits for the customer, not a timer.
        expect(phone.locator("#prompt-text")).to_contain_text(
            "Pay KES 150 to PesaDesk Demo Shop account"
        )
        expect(phone.locator("#pin")).to_be_focused()
        # The prompt was swapped in by htmx: wait until htmx has wired its form, or Enter
        # would take the plain-form path (which works too, but reloads the page).
        phone.wait_for_function(
            "() => { const f = document.querySelector('#pin').form;"
            " return !!(f && f['htmx-internal-data']); }"
        )
        phone.keyboard.type("1234")
        phone.keyboard.press("Enter")
        expect(screen).to_have_attribute("data-kind", "result")
        expect(phone.locator("#result-text")).to_contain_text("Confirmed. KES 150 paid to")
        assert phone.evaluate("window.__noReload") == "kept"  # htmx swapped, no reload

        expect(row).to_have_attribute("data-status", "paid", timeout=20_000)
        receipt = row.locator(".receipt strong").inner_text()
        assert receipt in phone.locator("#result-text").inner_text()
        browser_layer.ARTIFACTS.mkdir(exist_ok=True)
        phone.screenshot(path=str(browser_layer.ARTIFACTS / f"virtual-phone-{backend}.png"))
    finally:
        context.close()
