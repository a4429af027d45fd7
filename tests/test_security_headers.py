"""Security headers and cookie attributes, read from real responses; no inline script or style."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from app.security import CONTENT_SECURITY_POLICY
from tests.conftest import make_test_app
from tests.helpers import PASSWORD, failure_callback, login, post_json

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE_DIRS = (ROOT / "templates", ROOT / "app" / "simulator" / "templates")
PHONE = "0708374149"

CSP = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "connect-src": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
    "base-uri": "'none'",
    "object-src": "'none'",
}
HSTS = "max-age=31536000; includeSubDomains"


def _csp(response: TestResponse) -> dict[str, str]:
    policy = response.headers["Content-Security-Policy"]
    directives = (part.strip().split(None, 1) for part in policy.split(";") if part.strip())
    return {d[0]: d[1] if len(d) > 1 else "" for d in directives}


def assert_page_headers(response: TestResponse, *, cached: bool = False) -> None:
    """The headers every response carries; `cached` for a static file (no no-store)."""
    assert _csp(response) == CSP
    assert "unsafe" not in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert "Strict-Transport-Security" not in response.headers  # plain http, http BASE_URL
    if cached:
        assert "no-store" not in response.headers.get("Cache-Control", "")
    else:
        assert response.headers["Cache-Control"] == "no-store"


def _page(client: FlaskClient, url: str) -> TestResponse:
    """A page as a browser gets it; every redirect on the way carries the headers too."""
    response = client.get(url, follow_redirects=True)
    assert response.status_code == 200, (url, response.status_code)
    for hop in response.history:
        assert_page_headers(hop)
    return response


def test_login_page(client):
    assert_page_headers(_page(client, "/login"))


def test_counter(cashier_client):
    assert_page_headers(_page(cashier_client, "/cashier/"))


def test_owner_report_and_payment(owner_client, make_payment):
    payment = make_payment("paid", receipt_number="UAB1CD2EF3")
    assert_page_headers(_page(owner_client, "/owner/report"))
    assert_page_headers(_page(owner_client, f"/owner/payments/{payment.id}"))


def test_admin_till_and_callback_inbox(admin_client):
    assert_page_headers(_page(admin_client, "/admin/till"))
    assert_page_headers(_page(admin_client, "/admin/callbacks"))


def test_receipt(cashier_client, make_payment):
    payment = make_payment("paid", receipt_number="UAB1CD2EF3")
    response = _page(cashier_client, f"/cashier/payments/{payment.id}/receipt")
    assert "UAB1CD2EF3" in response.get_data(as_text=True)
    assert_page_headers(response)


def test_callback_url(client, till):
    response = post_json(client, f"/cb/stk/{till.callback_token}", failure_callback("ws_CO_NONE"))
    assert response.status_code == 200
    assert_page_headers(response)
    refused = post_json(client, "/cb/stk/not-the-token", failure_callback("ws_CO_NONE"))
    assert refused.status_code == 403
    assert_page_headers(refused)


def test_virtual_phone(client):
    assert_page_headers(_page(client, f"/simulator/phone?phone={PHONE}"))


def test_not_found_and_forbidden(client, cashier_client):
    missing = client.get("/no-such-page")
    assert missing.status_code == 404
    assert_page_headers(missing)
    forbidden = cashier_client.get("/admin/users")
    assert forbidden.status_code == 403
    assert_page_headers(forbidden)


def _static(client: FlaskClient, path: str) -> TestResponse:
    response = client.get(path)
    response.close()  # a file response holds the file open until closed
    return response


def test_static_files_are_cached_not_stored(client):
    css = _static(client, "/static/app.css")
    assert css.status_code == 200
    assert_page_headers(css, cached=True)
    # Changed in place by a release: the browser asks again (Flask's conditional default).
    assert "max-age=31536000" not in css.headers.get("Cache-Control", "")
    htmx = _static(client, "/static/vendor/htmx-2.0.11.min.js")
    assert htmx.status_code == 200
    assert_page_headers(htmx, cached=True)
    # The version is in the name: a new htmx is a new URL, so this one never changes.
    assert htmx.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    missing = _static(client, "/static/vendor/htmx-9.9.9.min.js")
    assert missing.status_code == 404
    assert "max-age" not in missing.headers.get("Cache-Control", "")


def _session_cookie(response: TestResponse) -> set[str]:
    """The session cookie's attributes from its Set-Cookie header, lower-cased."""
    cookies = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("session=")]
    assert len(cookies) == 1, response.headers.getlist("Set-Cookie")
    return {part.strip().lower() for part in cookies[0].split(";")[1:]}


def test_session_cookie_after_login(client):
    response = client.post("/login", data={"username": "cashier", "password": PASSWORD})
    assert response.status_code == 302
    attributes = _session_cookie(response)
    assert "httponly" in attributes
    assert "samesite=lax" in attributes
    assert "secure" not in attributes  # http BASE_URL: a Secure cookie would never come back
    assert "remember_token" not in " ".join(response.headers.getlist("Set-Cookie"))


@pytest.fixture
def https_app(app: Flask, database_url: str, sqlite_dir: Path) -> Iterator[Flask]:
    """A second app on the same database (users seeded by `app`), served as https."""
    application = make_test_app(database_url, sqlite_dir, BASE_URL="https://pay.example.co.ke")
    with application.app_context():
        yield application
        from app.extensions import db

        db.session.remove()
        db.engine.dispose()


def test_https_base_url_secure_cookie_and_hsts(https_app):
    client = https_app.test_client()
    response = client.post("/login", data={"username": "cashier", "password": PASSWORD})
    assert response.status_code == 302
    attributes = _session_cookie(response)
    assert {"secure", "httponly", "samesite=lax"} <= attributes
    assert response.headers["Strict-Transport-Security"] == HSTS
    assert https_app.config["REMEMBER_COOKIE_SECURE"] is True
    page = client.get("/login")
    assert page.headers["Strict-Transport-Security"] == HSTS
    assert _static(client, "/static/app.css").headers["Strict-Transport-Security"] == HSTS


def test_hsts_when_the_request_itself_is_https(client):
    # request.is_secure: TLS to this process, or a trusted proxy's X-Forwarded-Proto.
    secure = client.get("/login", base_url="https://localhost")
    assert secure.headers["Strict-Transport-Security"] == HSTS
    assert "Strict-Transport-Security" not in client.get("/login").headers


def test_logged_in_redirects_carry_the_headers(client):
    login(client, "owner")
    response = client.get("/")
    assert response.status_code == 302
    assert_page_headers(response)


def test_policy_constant_is_what_is_sent(client):
    assert client.get("/login").headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY


# The grep: an inline script, style or event handler would be refused by the policy in the
# browser; this fails fast without one. Jinja comments are skipped (they never reach a page).
JINJA_COMMENT = re.compile(r"\{#.*?#\}", re.S)
SCRIPT = re.compile(r"<script\b([^>]*)>(.*?)</script\s*>", re.S | re.I)
INLINE = {
    "style element": re.compile(r"<style\b", re.I),
    # An attribute, or a keyword argument to a WTForms field (which renders one).
    "style attribute": re.compile(r"(?<![\w-])style\s*=", re.I),
    "event handler attribute": re.compile(r"<[a-z][^>]*?\son[a-z]+\s*=", re.I),
    "javascript: URL": re.compile(r"javascript:", re.I),
    # Need eval, which htmx is told not to use (templates/base.html): they would do nothing.
    "hx-on attribute": re.compile(r"(?<![\w-])(data-)?hx-on\b", re.I),
    "hx-vars / js: value": re.compile(r"hx-vars|hx-vals\s*=\s*['\"]\s*(js|javascript):", re.I),
}


def _templates() -> list[Path]:
    return sorted(p for d in TEMPLATE_DIRS for p in d.rglob("*.html"))


def test_templates_have_no_inline_script_or_style():
    found = []
    for path in _templates():
        text = JINJA_COMMENT.sub("", path.read_text())
        where = path.relative_to(ROOT)
        for attrs, body in SCRIPT.findall(text):
            if body.strip() or "src=" not in attrs:
                found.append(f"{where}: inline <script>")
        for name, pattern in INLINE.items():
            for match in pattern.finditer(text):
                line = text.count("\n", 0, match.start()) + 1
                found.append(f"{where}:{line}: {name}")
    assert not found, "\n".join(found)
    assert len(_templates()) > 10  # the directories above are the right ones


def test_the_grep_finds_what_it_looks_for():
    samples = [
        '<p style="color:red">',
        "<style>p{}</style>",
        '<button onclick="go()">',
        '{{ f(style="x") }}',
        '<a href="javascript:go()">',
        '<div hx-on:click="go()">',
        "<div hx-vals='js:{a: 1}'>",
    ]
    for sample in samples:
        assert any(p.search(sample) for p in INLINE.values()), sample
    assert SCRIPT.findall("<script>go()</script>") == [("", "go()")]
    harmless = '<p class="phone" data-online="1" hx-swap="outerHTML">Lipa na M-Pesa, one=1</p>'
    assert not any(p.search(harmless) for p in INLINE.values())
