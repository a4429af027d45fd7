"""Each user picks English or Kiswahili; the counter, its rows and its refusals follow."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from bs4 import BeautifulSoup
from flask_babel import force_locale, gettext, refresh

from app.extensions import db
from app.models import User
from app.models.types import utcnow
from app.payments import guards
from app.payments.messages import LABELS, RESULT_MESSAGES, explain_input_error, status_label

HX = {"HX-Request": "true"}


def _soup(response) -> BeautifulSoup:
    return BeautifulSoup(response.get_data(as_text=True), "html.parser")


def _user(name: str) -> User:
    db.session.expire_all()
    return db.session.execute(sa.select(User).where(User.username == name)).scalar_one()


def test_english_is_the_default(cashier_client):
    soup = _soup(cashier_client.get("/cashier/"))
    assert soup.html["lang"] == "en"
    assert soup.find("label", attrs={"for": "phone"}).get_text() == "Customer phone"
    assert soup.find(id="language").find("option", selected=True)["value"] == "en"


def test_choosing_swahili_is_stored_and_the_counter_follows(cashier_client):
    response = cashier_client.post("/language", data={"language": "sw", "next": "/cashier/?q=1"})
    assert response.status_code == 302
    assert response.headers["Location"] == "/cashier/?q=1"
    assert _user("cashier").language == "sw"
    soup = _soup(cashier_client.get("/cashier/"))
    assert soup.html["lang"] == "sw"
    assert soup.find("label", attrs={"for": "phone"}).get_text() == "Simu ya mteja"
    assert soup.find("label", attrs={"for": "amount"}).get_text() == "Kiasi (KES)"
    assert "Tuma ombi" in soup.select_one("#pay-form button").get_text()
    assert soup.find(id="no-payments").get_text() == "Bado hakuna malipo leo."
    assert soup.find(id="language").find("option", selected=True)["value"] == "sw"


def test_swahili_rows_say_what_to_do(cashier_client, make_payment):
    cashier_client.post("/language", data={"language": "sw"})
    make_payment("failed", result_code="1", amount=80)
    make_payment("paid", receipt_number="UAT9999999", amount=81)
    make_payment("pending", amount=82, pushed_at=utcnow() - timedelta(seconds=5))
    soup = _soup(cashier_client.get("/cashier/"))
    badges = [b.get_text() for b in soup.select("li.row .badge")]
    assert badges == ["Inasubiri PIN", "Imelipwa", "Imeshindwa"]
    messages = [m.get_text() for m in soup.select("li.row .msg")]
    assert messages[1].startswith("Malipo yamepokelewa.")  # then the receipt
    assert messages[2].startswith("Salio la M-PESA la mteja halitoshi")
    assert "Tuma tena" in soup.select_one(".resend-form button").get_text()
    assert soup.find(id="today-paid-count").find_previous("dt").get_text() == (
        "Malipo yaliyopokelewa"
    )


def test_swahili_refusal_on_the_form(cashier_client):
    cashier_client.post("/language", data={"language": "sw"})
    response = cashier_client.post(
        "/cashier/payments", data={"phone": "0708374149", "amount": "99.50"}, headers=HX
    )
    soup = _soup(response)
    assert soup.find(id="pay-error").get_text() == (
        "Shilingi kamili tu, bila desimali: M-PESA haipokei senti."
    )
    assert soup.find(id="amount")["aria-invalid"] == "true"
    assert soup.find(id="amount").has_attr("autofocus")
    assert not soup.find(id="phone").has_attr("autofocus")


@pytest.mark.parametrize("role", ["owner", "admin"])
def test_every_role_can_choose(app, role):
    from tests.helpers import login

    client = app.test_client()
    login(client, role)
    assert client.post("/language", data={"language": "sw"}).status_code == 302
    assert _user(role).language == "sw"
    page = client.get("/", follow_redirects=True)
    assert _soup(page).find(id="language-form")  # the small form is on every page


def test_an_unknown_language_is_refused(cashier_client):
    response = cashier_client.post("/language", data={"language": "fr"})
    assert response.status_code == 400
    assert "Choose English or Kiswahili." in response.get_data(as_text=True)
    assert _user("cashier").language == "en"


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil", ""])
def test_the_redirect_after_choosing_stays_on_site(cashier_client, target):
    response = cashier_client.post("/language", data={"language": "sw", "next": target})
    assert response.headers["Location"] == "/cashier/"


def test_the_language_form_needs_the_csrf_token(app):
    app.config["WTF_CSRF_ENABLED"] = True
    client = app.test_client()
    token = _soup(client.get("/login")).find("input", attrs={"name": "csrf_token"})["value"]
    from tests.helpers import PASSWORD

    client.post("/login", data={"username": "cashier", "password": PASSWORD, "csrf_token": token})
    assert client.post("/language", data={"language": "sw"}).status_code == 400
    form = _soup(client.get("/cashier/")).find(id="language-form")
    assert form.find("input", attrs={"name": "csrf_token"})["value"]
    data = {
        "language": "sw",
        "csrf_token": form.find("input", attrs={"name": "csrf_token"})["value"],
    }
    assert client.post("/language", data=data).status_code == 302
    assert _user("cashier").language == "sw"


def test_before_login_the_browser_language_is_used(client):
    soup = _soup(client.get("/login", headers={"Accept-Language": "sw-KE,sw;q=0.9,en;q=0.5"}))
    assert soup.html["lang"] == "sw"
    assert soup.find("h1").get_text() == "Ingia"
    assert soup.find("label", attrs={"for": "username"}).get_text() == "Jina la mtumiaji"


def test_login_redirect_message_is_translated(client):
    response = client.get("/cashier/", headers={"Accept-Language": "sw"}, follow_redirects=True)
    assert "Tafadhali ingia." in response.get_data(as_text=True)


def test_every_result_code_and_status_word_has_swahili(app):
    with app.test_request_context(), force_locale("sw"):
        for code, msgid in RESULT_MESSAGES.items():
            assert gettext(msgid) != msgid, code
        for status, english in LABELS.items():
            assert status_label(status) != english, status
        assert status_label("paid") == "Imelipwa"
        assert status_label("failed") == "Imeshindwa"
        assert status_label("pending") == "Inasubiri PIN"


def test_try_later_messages_are_translated_with_a_countdown(app):
    with app.test_request_context(), force_locale("sw"):
        for reason in guards.MESSAGES:
            explained = explain_input_error(guards.TryLater(reason, 42))
            assert "sekunde" in explained.text, reason
            assert 'data-seconds="42"' in explained.text
            assert explained.seconds == 42


def test_error_pages_speak_the_users_language(cashier_client, make_payment):
    p = make_payment("failed", result_code="1032")
    english = _soup(cashier_client.get("/cashier/payments/999/receipt"))
    assert english.find(id="error").h2.get_text() == "404 Not found"
    assert english.find(id="error").p.get_text() == "There is nothing at this address."
    cashier_client.post("/language", data={"language": "sw"})
    # Test-client requests share the test's app context, where Flask-Babel caches the locale
    # of the first request; a real request starts afresh.
    refresh()
    response = cashier_client.get(f"/cashier/payments/{p.id}/receipt")
    error = _soup(response).find(id="error")
    assert response.status_code == 404
    assert error.h2.get_text() == "404 Haipatikani"
    assert error.p.get_text() == "Hakuna risiti: malipo haya hayajalipwa."
    assert _soup(cashier_client.get("/owner/report")).find(id="error").h2.get_text() == (
        "403 Hairuhusiwi"
    )


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("sw-KE,en-US;q=0.8", "sw"),
        ("en-GB,sw;q=0.5", "en"),
        ("fr-FR,sw-TZ;q=0.7", "sw"),
        ("de", "en"),
        ("", "en"),
    ],
)
def test_the_browser_language_is_read_by_its_main_tag(client, header, expected):
    soup = _soup(client.get("/login", headers={"Accept-Language": header}))
    assert soup.html["lang"] == expected
