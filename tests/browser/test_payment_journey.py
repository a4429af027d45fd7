"""A cashier sends a payment, sees it turn Paid without reloading; the owner finds the receipt."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import ARTIFACTS, login

pytestmark = pytest.mark.browser


def test_cashier_to_owner(server, page, backend):
    login(page, server, "cashier")
    expect(page).to_have_url(re.compile(r"/cashier/$"))
    expect(page.locator("#phone")).to_be_focused()

    # Mark the document: if the page reloads, the mark is gone.
    page.evaluate("window.__noReload = 'kept'")
    page.fill("#phone", "0708 374 149")
    page.fill("#amount", "150")
    page.press("#amount", "Enter")

    row = page.locator("#payment-rows li.row").first
    expect(row).to_have_attribute("data-status", re.compile("initiating|pending"))
    expect(page.locator("#phone")).to_have_value("")  # the form is cleared for the next sale
    expect(row).to_have_attribute("data-status", "paid", timeout=20_000)
    expect(row.locator(".badge")).to_have_text("Paid")
    receipt = row.locator(".receipt strong").inner_text()
    assert re.fullmatch(r"[A-Z0-9]{10}", receipt)
    assert page.evaluate("window.__noReload") == "kept"
    assert page.locator("#payment-rows li.row").count() == 1
    expect(page.locator("#no-payments")).to_be_hidden()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"cashier-paid-{backend}.png"), full_page=True)

    page.click("text=Log out")
    login(page, server, "owner")
    expect(page).to_have_url(re.compile(r"/owner/report"))
    expect(page.locator("#receipts")).to_contain_text(receipt)
    expect(page.locator("#paid-count")).to_have_text("1")
    expect(page.locator("#paid-kes")).to_have_text("KES 150")
    expect(page.locator("#receipts")).to_contain_text("cashier")
    page.screenshot(path=str(ARTIFACTS / f"owner-report-{backend}.png"), full_page=True)


def test_cancelled_payment_says_what_to_do(server, page, backend):
    login(page, server, "cashier")
    page.fill("#phone", "0708374149")
    page.fill("#amount", "1032")
    page.press("#amount", "Enter")
    row = page.locator("#payment-rows li.row").first
    expect(row).to_have_attribute("data-status", "failed", timeout=20_000)
    expect(row.locator(".msg")).to_contain_text("cancelled")


def test_bad_amount_is_refused_in_place(server, page, backend):
    login(page, server, "cashier")
    page.fill("#phone", "0708374149")
    page.fill("#amount", "99.50")
    page.press("#amount", "Enter")
    expect(page.locator("#pay-error")).to_contain_text("Whole shillings only, no decimals")
    expect(page.locator("#amount")).to_have_value("99.50")
    assert page.locator("#payment-rows li.row").count() == 0
    expect(page.locator("#no-payments")).to_be_visible()
