"""A counter left open for hours still sends: the CSRF token lives as long as the session."""

from __future__ import annotations

import re
import time

import itsdangerous.timed

from tests.helpers import PASSWORD

HX = {"HX-Request": "true"}


def _token(page: str) -> str:
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)


def test_a_token_from_hours_ago_is_still_good(app, monkeypatch):
    app.config["WTF_CSRF_ENABLED"] = True
    assert app.config["WTF_CSRF_TIME_LIMIT"] is None
    client = app.test_client()
    login_page = client.get("/login").get_data(as_text=True)
    client.post(
        "/login",
        data={"csrf_token": _token(login_page), "username": "cashier", "password": PASSWORD},
    )
    token = _token(client.get("/cashier/").get_data(as_text=True))
    # Three hours at an idle counter, then Enter.
    later = time.time() + 3 * 3600
    monkeypatch.setattr(itsdangerous.timed.time, "time", lambda: later)
    r = client.post(
        "/cashier/payments",
        data={"csrf_token": token, "phone": "0708374149", "amount": "20",
              "idempotency_key": "c" * 32},
        headers={**HX, "X-CSRFToken": token},
    )  # fmt: skip
    html = r.get_data(as_text=True)
    assert r.status_code == 200 and 'id="payment-' in html, html[:500]


def test_a_token_of_another_session_is_refused_with_words_the_counter_shows(app):
    app.config["WTF_CSRF_ENABLED"] = True
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    client.post(
        "/login", data={"csrf_token": _token(page), "username": "cashier", "password": PASSWORD}
    )
    r = client.post(
        "/cashier/payments",
        data={"csrf_token": "stale", "phone": "0708374149", "amount": "20"},
        headers={**HX, "X-CSRFToken": "stale"},
    )
    assert r.status_code == 400
    assert "Your login session has ended or changed" in r.get_data(as_text=True)


def test_a_logged_out_htmx_request_is_a_401_not_the_login_page(client):
    r = client.get("/cashier/payments/1/row", headers=HX)
    assert r.status_code == 401
    body = r.get_data(as_text=True)
    assert "You are logged out, so nothing was sent" in body and 'id="password"' not in body
    # Without htmx it is still the usual redirect to the login page.
    plain = client.get("/cashier/")
    assert plain.status_code == 302 and "/login" in plain.headers["Location"]
