"""Two-factor sign-in (TOTP) for owners and admins: enrolment with a QR code, codes from an
authenticator (pyotp here), recovery codes that work once, a per-role requirement, and an
admin's reset."""

from __future__ import annotations

import time

import pyotp
import sqlalchemy as sa
from bs4 import BeautifulSoup

from app.crypto import decrypt
from app.extensions import db
from app.models import AuditAction
from app.models.settings import Setting
from app.models.user import RecoveryCode
from tests.auth.support import alert, entries, sign_in, user
from tests.helpers import PASSWORD, login


def _soup(response) -> BeautifulSoup:
    return BeautifulSoup(response.get_data(as_text=True), "html.parser")


def enrol(client) -> tuple[pyotp.TOTP, list[str]]:
    """Enrol the signed-in user as a person with an authenticator app would."""
    page = client.get("/account/two-factor")
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    soup = _soup(page)
    svg = soup.find("svg")
    assert svg["role"] == "img" and svg["aria-label"] and svg.find("path")  # drawn inline
    totp = pyotp.TOTP(soup.find(id="secret").get_text().replace(" ", ""))
    done = client.post("/account/two-factor", data={"code": totp.now()})
    assert done.status_code == 200, alert(done)
    codes = [li.get_text() for li in _soup(done).select("#recovery-codes li")]
    return totp, codes


def next_code(totp: pyotp.TOTP) -> str:
    """The next step's code: the current one was used (a code is accepted once)."""
    return totp.at(time.time() + 30)


def test_enrolment_and_sign_in_with_a_code(app, owner_client):
    totp, codes = enrol(owner_client)
    assert len(codes) == 10 and len(set(codes)) == 10
    owner = user("owner")
    # The secret is encrypted at rest; the recovery codes are kept only as digests.
    assert totp.secret.encode() not in owner.totp_secret_enc
    assert decrypt(owner.totp_secret_enc) == totp.secret
    stored = db.session.execute(sa.select(RecoveryCode.code_hash)).scalars().all()
    assert len(stored) == 10 and not set(stored) & {c.replace("-", "") for c in codes}
    [enrolled] = entries(AuditAction.TWO_FACTOR_ENROLLED)
    assert enrolled.actor_name == "owner" and enrolled.detail is None
    # Signing in now takes the password, then a code.
    client = app.test_client()
    r = sign_in(client, "owner", PASSWORD)
    assert r.status_code == 302 and r.headers["Location"].endswith("/login/code")
    assert client.get("/owner/report").status_code == 302  # not signed in yet
    page = _soup(client.get("/login/code"))
    assert len(page.find_all("h1")) == 1 and page.find("label", attrs={"for": "code"})
    r = client.post("/login/code", data={"code": "000000"})
    assert r.status_code == 422 and alert(r) == "That code is not right."
    code = next_code(totp)
    r = client.post("/login/code", data={"code": code})
    assert r.status_code == 302 and r.headers["Location"].endswith("/owner/report")
    assert client.get("/owner/report").status_code == 200
    [signed_in] = [e for e in entries(AuditAction.SIGN_IN) if e.detail]
    assert signed_in.detail == {"two_factor": "totp"}
    # The same code cannot be used again, even within its 30 seconds.
    other = app.test_client()
    sign_in(other, "owner", PASSWORD)
    r = other.post("/login/code", data={"code": code})
    assert r.status_code == 422 and other.get("/owner/report").status_code == 302
    failed = entries(AuditAction.SIGN_IN_FAILED)
    assert [e.detail["reason"] for e in failed] == ["wrong_totp", "wrong_totp"]


def test_a_recovery_code_works_once(app, owner_client):
    _totp, codes = enrol(owner_client)
    client = app.test_client()
    sign_in(client, "owner", PASSWORD)
    r = client.post("/login/code", data={"code": codes[3].upper().replace("-", " ")})
    assert r.status_code == 302 and client.get("/owner/report").status_code == 200
    assert entries(AuditAction.SIGN_IN)[-1].detail == {"two_factor": "recovery_code"}
    again = app.test_client()
    sign_in(again, "owner", PASSWORD)
    r = again.post("/login/code", data={"code": codes[3]})
    assert r.status_code == 422 and again.get("/owner/report").status_code == 302
    r = again.post("/login/code", data={"code": codes[4]})
    assert r.status_code == 302
    page = owner_client.get("/account/two-factor").get_data(as_text=True)
    assert "8 recovery codes left." in page


def test_code_guesses_are_throttled_and_lock_the_account(app, owner_client):
    enrol(owner_client)
    client = app.test_client()
    sign_in(client, "owner", PASSWORD, "10.20.0.1")
    answers = [
        client.post(
            "/login/code", data={"code": f"{i:06d}"}, environ_base={"REMOTE_ADDR": f"10.21.0.{i}"}
        ).status_code
        for i in range(20)
    ]
    assert answers[:5] == [422] * 5 and set(answers[5:]) == {429}
    assert entries(AuditAction.SIGN_IN_LOCKED)
    r = sign_in(app.test_client(), "owner", PASSWORD, "10.22.0.1")
    assert r.status_code == 429 and "locked" in alert(r)


def test_the_code_step_expires_and_needs_the_password_first(app, client, owner_client):
    assert client.get("/login/code").headers["Location"].endswith("/login")
    enrol(owner_client)
    sign_in(client, "owner", PASSWORD)
    with client.session_transaction() as session:
        pending = session["_two_factor"]
        session["_two_factor"] = {**pending, "at": pending["at"] - 301}
    r = client.get("/login/code")
    assert r.status_code == 302 and r.headers["Location"].endswith("/login")


def test_a_wrong_enrolment_code_is_refused_beside_the_field(owner_client):
    r = owner_client.post("/account/two-factor", data={"code": "12345x"})
    assert r.status_code == 422
    soup = _soup(r)
    assert soup.find(id="code")["aria-describedby"] == "code-error"
    assert "That code is not right" in soup.find(id="code-error").get_text()
    assert soup.find(id="code-error")["role"] == "alert"
    assert user("owner").totp_enabled_at is None
    r = owner_client.post("/account/two-factor", data={"code": "1" * 17})
    assert r.status_code == 422 and "A code has 6 digits." in alert(r)


def test_cashiers_have_no_two_factor_page(cashier_client):
    assert cashier_client.get("/account/two-factor").status_code == 403


def test_a_role_that_requires_it_must_enrol_before_any_page(app, admin_client):
    r = admin_client.post("/admin/users/two-factor", data={"owner": "y"})
    assert r.status_code == 302
    assert db.session.get(Setting, "two_factor_required_roles").value == "owner"
    [changed] = entries(AuditAction.TWO_FACTOR_REQUIRED)
    assert changed.detail == {"from": [], "to": ["owner"]} and changed.actor_name == "admin"
    client = app.test_client()
    r = sign_in(client, "owner", PASSWORD)
    assert r.headers["Location"].endswith("/account/two-factor")
    for url in ("/owner/report", "/cashier/payments/1/receipt", "/account/password", "/"):
        r = client.get(url, follow_redirects=True)
        assert r.request.path == "/account/two-factor", url
    r = client.get("/owner/report", headers={"HX-Request": "true"})
    assert r.status_code == 204 and r.headers["HX-Redirect"] == "/account/two-factor"
    page = client.get("/account/two-factor").get_data(as_text=True)
    assert "Your role requires two-factor sign-in" in page
    # Cashiers and admins (not required) carry on.
    assert admin_client.get("/admin/users").status_code == 200
    cashier = app.test_client()
    login(cashier, "cashier")
    assert cashier.get("/account/password").status_code == 200
    # Enrolled: every page again.
    enrol(client)
    assert client.get("/owner/report").status_code == 200


def test_an_admin_resets_a_lost_phone(app, admin_client, owner_client):
    totp, _codes = enrol(owner_client)
    owner = user("owner")
    page = admin_client.get("/admin/users").get_data(as_text=True)
    assert f"/admin/users/{owner.id}/two-factor/reset" in page
    r = admin_client.post(f"/admin/users/{owner.id}/two-factor/reset")
    assert r.status_code == 302
    owner = user("owner")
    assert owner.totp_secret_enc is None and owner.totp_enabled_at is None
    assert db.session.execute(sa.select(sa.func.count()).select_from(RecoveryCode)).scalar() == 0
    [reset] = entries(AuditAction.TWO_FACTOR_RESET)
    assert reset.actor_name == "admin" and reset.target == f"user:{owner.id}"
    # Their sessions ended; the password alone signs in again (nothing requires 2FA).
    assert owner_client.get("/owner/report").status_code == 302
    client = app.test_client()
    r = sign_in(client, "owner", PASSWORD)
    assert r.headers["Location"].endswith("/owner/report")
    assert totp  # (the old authenticator entry is now useless)
