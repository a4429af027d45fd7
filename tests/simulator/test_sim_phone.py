"""The virtual phone: prompt text, PIN, Cancel, timeout, htmx polling and plain-form fallbacks."""

from __future__ import annotations

import time

import pytest
from bs4 import BeautifulSoup

from app.simulator.state import get_state

PHONE = "254708374149"
HX = {"HX-Request": "true"}


@pytest.fixture
def phone_app(make_app):
    return make_app(SIMULATOR_CALLBACK_DELAY=0.05, SIMULATOR_PROMPT_TIMEOUT=5)


@pytest.fixture
def daraja(phone_app, daraja_for):
    return daraja_for(phone_app)


@pytest.fixture
def browser(phone_app):
    return phone_app.test_client()


def _soup(response) -> BeautifulSoup:
    return BeautifulSoup(response.get_data(as_text=True), "html.parser")


def _screen(browser, phone: str = PHONE, showing: str = ""):
    return browser.get(f"/simulator/phone/screen?phone={phone}&showing={showing}", headers=HX)


def _open(browser, phone: str = "0708 374 149") -> BeautifulSoup:
    response = browser.get(f"/simulator/phone?phone={phone}")
    assert response.status_code == 200
    return _soup(response)


def _pay(browser, checkout: str, pin: str = "1234", action: str = "pay", **headers):
    data = {"phone": PHONE, "checkout_request_id": checkout, "pin": pin, "action": action}
    return browser.post("/simulator/phone/answer", data=data, headers=headers)


def test_page_without_a_number_offers_the_chooser(browser):
    soup = _soup(browser.get("/simulator/phone"))
    form = soup.select_one("form.choose")
    assert form["method"] == "get" and form.select_one("input[name=phone]")
    assert soup.select_one("#phone-screen") is None
    script = soup.select_one("script[src]")
    assert script["src"] == "/static/vendor/htmx-2.0.11.min.js"  # vendored, no CDN
    assert soup.select_one('meta[name="viewport"]')


def test_a_bad_number_is_explained(browser):
    soup = _soup(browser.get("/simulator/phone?phone=12345"))
    assert "not a Safaricom mobile number" in soup.select_one(".notice").get_text()


def test_open_phone_shows_an_idle_screen_and_polls(browser):
    soup = _open(browser)
    [screen] = soup.select("#phone-screen")
    assert screen["data-kind"] == "idle"
    assert screen["hx-trigger"] == "every 1s"
    assert "phone=254708374149" in screen["hx-get"] and "showing=idle" in screen["hx-get"]
    assert "Demo PIN: 1234" in screen.get_text()
    assert soup.select_one("noscript meta[http-equiv=refresh]")  # no-JS users still see news


def test_push_to_an_open_phone_waits_for_the_pin(phone_app, browser, daraja, receiver):
    _open(browser)
    checkout = daraja.pushed(Amount=150, AccountReference="INV-42")
    time.sleep(0.2)  # far beyond SIMULATOR_CALLBACK_DELAY: an unattended push would be over
    assert daraja.query(checkout).get_json()["errorMessage"] == "The transaction is being processed"
    screen = _soup(_screen(browser)).select_one("#phone-screen")
    assert screen["data-kind"] == "prompt"
    assert screen.select_one("#prompt-text").get_text() == (
        "Pay KES 150 to PesaDesk Demo Shop account INV-42. Enter M-PESA PIN"
    )
    form = screen.select_one("form")
    assert form["method"] == "post" and form["action"] == "/simulator/phone/answer"
    assert form["hx-post"] == "/simulator/phone/answer"
    assert form["hx-target"] == "#phone-screen"
    assert [b["value"] for b in form.select("button")] == ["pay", "cancel"]  # Enter = OK
    assert get_state(phone_app).get_push(checkout).awaiting_human
    assert receiver.for_checkout(checkout) == []


def test_unchanged_screen_answers_204_so_a_typed_pin_survives(browser, daraja):
    _open(browser)
    daraja.pushed()
    first = _screen(browser)
    key = _soup(first).select_one("#phone-screen")["hx-get"].split("showing=")[1]
    again = _screen(browser, showing=key)
    assert again.status_code == 204 and again.data == b""


def test_the_partial_has_one_root_with_a_stable_id(browser):
    _open(browser)
    html = _screen(browser, showing="other").get_data(as_text=True)
    roots = [el for el in BeautifulSoup(html, "html.parser").contents if el.name]
    assert [r.get("id") for r in roots] == ["phone-screen"]


def test_correct_pin_pays_and_calls_back(browser, daraja, receiver, wait_until):
    _open(browser)
    checkout = daraja.pushed(Amount=150)
    response = _pay(browser, checkout, **HX)
    assert response.status_code == 200
    screen = _soup(response).select_one("#phone-screen")
    assert screen["data-kind"] == "result"
    assert "Confirmed. KES 150 paid to PesaDesk Demo Shop." in screen.get_text()
    final = daraja.final_query(checkout)
    assert final["ResultCode"] == "0"
    assert wait_until(lambda: receiver.for_checkout(checkout))
    receipt = receiver.for_checkout(checkout)[0]["Body"]["stkCallback"]["CallbackMetadata"]
    assert receipt["Item"][1]["Value"] in screen.get_text()
    row = daraja.control("GET", "pushes").get_json()[0]
    assert (row["awaiting"], row["answered_by"]) == ("human", "phone-pin")


@pytest.mark.parametrize(
    ("pin", "action", "code", "answered_by", "says"),
    [
        ("0000", "pay", "2001", "phone-wrong-pin", "Wrong M-PESA PIN"),
        ("", "cancel", "1032", "phone-cancel", "You cancelled"),
    ],
)
def test_wrong_pin_and_cancel(browser, daraja, pin, action, code, answered_by, says):
    _open(browser)
    checkout = daraja.pushed()
    screen = _soup(_pay(browser, checkout, pin=pin, action=action, **HX))
    assert says in screen.get_text()
    assert daraja.final_query(checkout)["ResultCode"] == code
    assert daraja.control("GET", "pushes").get_json()[0]["answered_by"] == answered_by


def test_ignored_prompt_fails_with_1037_after_the_timeout(make_app, daraja_for, receiver):
    app = make_app(SIMULATOR_PROMPT_TIMEOUT=0.3)
    browser, daraja = app.test_client(), daraja_for(app)
    _open(browser)
    checkout = daraja.pushed()
    assert daraja.query(checkout).get_json()["errorCode"] == "500.001.1001"
    final = daraja.final_query(checkout)
    assert (final["ResultCode"], final["ResultDesc"]) == (
        "1037",
        "DS timeout user cannot be reached.",
    )
    screen = _soup(_screen(browser)).select_one("#phone-screen")
    assert "timed out before you answered" in screen.get_text()


def test_plain_form_answer_redirects_back_to_the_page(browser, daraja):
    _open(browser)
    checkout = daraja.pushed()
    response = _pay(browser, checkout)
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/simulator/phone?phone=254708374149")
    page = _soup(browser.get(response.headers["Location"]))
    assert page.select_one("#phone-screen")["data-kind"] == "result"
    assert daraja.final_query(checkout)["ResultCode"] == "0"


def test_plain_get_of_the_screen_redirects_to_the_page(browser):
    response = browser.get(f"/simulator/phone/screen?phone={PHONE}")
    assert response.status_code == 303


def test_answering_a_finished_prompt_says_so(browser, daraja):
    _open(browser)
    checkout = daraja.pushed()
    _pay(browser, checkout)
    again = _pay(browser, checkout, **HX)
    assert again.status_code == 200  # htmx swaps 2xx only; the notice explains
    assert "no longer waiting" in _soup(again).select_one(".notice").get_text()
    plain = _pay(browser, checkout)
    assert plain.status_code == 409
    assert "no longer waiting" in plain.get_data(as_text=True)


def test_correct_pin_gives_the_scenarios_own_outcome(browser, daraja):
    poor = "254700000001"  # insufficient funds
    _open(browser, poor)
    checkout = daraja.pushed(PhoneNumber=poor, PartyA=poor)
    browser.post(
        "/simulator/phone/answer",
        data={"phone": poor, "checkout_request_id": checkout, "pin": "1234", "action": "pay"},
    )
    assert daraja.final_query(checkout)["ResultCode"] == "1"


def test_per_phone_pins(make_app, daraja_for):
    app = make_app(SIMULATOR_PINS={PHONE: "9876"}, SIMULATOR_PROMPT_TIMEOUT=5)
    browser, daraja = app.test_client(), daraja_for(app)
    soup = _open(browser)
    assert "SIMULATOR_PINS" in soup.select_one("#phone-screen").get_text()
    assert "9876" not in soup.get_text()  # a custom PIN is not shown
    checkout = daraja.pushed()
    _pay(browser, checkout, pin="1234")
    assert daraja.final_query(checkout)["ResultCode"] == "2001"


def test_buy_goods_prompt_names_the_till_and_has_no_account(make_app, daraja_for):
    app = make_app(SIMULATOR_BUSINESS_NAMES={"5123456": "Mama Mboga"}, SIMULATOR_PROMPT_TIMEOUT=5)
    browser, daraja = app.test_client(), daraja_for(app)
    _open(browser)
    daraja.pushed(TransactionType="CustomerBuyGoodsOnline", PartyB="5123456", Amount=1500)
    text = _soup(_screen(browser)).select_one("#prompt-text").get_text()
    assert text == "Pay KES 1,500 to Mama Mboga. Enter M-PESA PIN"


def test_unknown_shortcode_name_falls_back_to_the_number(make_app, daraja_for):
    app = make_app(SIMULATOR_BUSINESS_NAMES={}, SIMULATOR_PROMPT_TIMEOUT=5)
    browser, daraja = app.test_client(), daraja_for(app)
    _open(browser)
    daraja.pushed(AccountReference="A1")
    assert "to 174379 account A1." in _soup(_screen(browser)).get_text()


def test_a_phone_not_seen_recently_does_not_hold_pushes(make_app, daraja_for):
    app = make_app(SIMULATOR_CALLBACK_DELAY=0.05, SIMULATOR_PHONE_PRESENCE=0.2)
    browser, daraja = app.test_client(), daraja_for(app)
    _open(browser)
    time.sleep(0.3)  # the tab was closed: no poll within the presence window
    checkout = daraja.pushed()
    assert daraja.final_query(checkout)["ResultCode"] == "0"
    assert daraja.control("GET", "pushes").get_json()[0]["awaiting"] == "scenario"


def test_a_push_made_before_the_phone_opened_is_shown_as_automatic(make_app, daraja_for):
    app = make_app(SIMULATOR_CALLBACK_DELAY=30)
    browser, daraja = app.test_client(), daraja_for(app)
    daraja.pushed(Amount=4040)
    screen = _open(browser).select_one("#phone-screen")
    assert screen["data-kind"] == "auto"
    assert "success-callback-lost" in screen.get_text()
    assert screen.select_one("form") is None


def test_callback_before_response_never_waits_for_the_phone(browser, daraja, receiver):
    _open(browser)
    response = daraja.push(Amount=7070)
    checkout = response.get_json()["CheckoutRequestID"]
    assert receiver.for_checkout(checkout)  # delivered before the answer, phone open or not


def test_answer_rejects_bad_input(browser):
    assert browser.post("/simulator/phone/answer", data={"phone": "x"}).status_code == 400
    bad = browser.post("/simulator/phone/answer", data={"phone": PHONE, "action": "steal"})
    assert bad.status_code == 400
    assert _screen(browser, phone="nope").status_code == 400
