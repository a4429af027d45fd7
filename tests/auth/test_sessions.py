"""Sessions that end: a logout, a password change or reset, a deactivation or a two-factor
reset ends the user's other sessions at once; owners and admins are logged out after 30 idle
minutes, cashiers after their 12-hour shift. Time is moved in the session, never slept."""

from __future__ import annotations

import html

import pytest

from app.auth.sessions import SEEN, SINCE
from app.extensions import db
from app.models import AuditAction
from tests.auth.support import STRONG, entries, user
from tests.helpers import PASSWORD, login

HX = {"HX-Request": "true"}
HOME = {"cashier": "/account/password", "owner": "/owner/report", "admin": "/admin/users"}


def _signed_in(app, role: str):
    client = app.test_client()
    login(client, role)
    assert client.get(HOME[role]).status_code == 200
    return client


def _out(client, role: str) -> bool:
    response = client.get(HOME[role])
    return response.status_code == 302 and "/login" in response.headers["Location"]


def test_the_session_id_carries_the_version(app):
    owner = user("owner")
    assert owner.get_id() == f"{owner.id}:1"
    client = _signed_in(app, "owner")
    with client.session_transaction() as session:
        assert session["_user_id"] == f"{owner.id}:1"
        session["_user_id"] = str(owner.id)  # a session from before versions
    assert _out(client, "owner")


def test_logging_out_ends_the_other_sessions(app):
    tablet, phone = _signed_in(app, "cashier"), _signed_in(app, "cashier")
    other_user = _signed_in(app, "owner")
    assert tablet.post("/logout").status_code == 302
    assert _out(tablet, "cashier") and _out(phone, "cashier")
    assert not _out(other_user, "owner")
    [signed_out] = entries(AuditAction.SIGNED_OUT)
    assert signed_out.actor_name == "cashier" and signed_out.target == f"user:{user('cashier').id}"
    r = phone.get("/account/password", follow_redirects=True)
    assert "Your session has ended. Please log in again." in r.get_data(as_text=True)


def test_changing_my_password_keeps_this_session_and_ends_the_others(app):
    here, elsewhere = _signed_in(app, "owner"), _signed_in(app, "owner")
    r = here.post(
        "/account/password",
        data={"current_password": PASSWORD, "new_password": STRONG, "confirm": STRONG},
    )
    assert r.status_code == 302
    assert not _out(here, "owner") and _out(elsewhere, "owner")
    assert user("owner").session_version == 2


@pytest.mark.parametrize("change", ["deactivate", "reset_password"])
def test_an_admin_change_ends_the_users_sessions(app, admin_client, change):
    cashier = user("cashier")
    tablet = _signed_in(app, "cashier")
    owner = _signed_in(app, "owner")
    prefix = f"u{cashier.id}"
    data = {f"{prefix}-role": "cashier", f"{prefix}-active": "y"}
    if change == "deactivate":
        data[f"{prefix}-active"] = ""
    else:
        data[f"{prefix}-password"] = STRONG
    assert admin_client.post(f"/admin/users/{cashier.id}", data=data).status_code == 302
    assert _out(tablet, "cashier") and not _out(owner, "owner")
    assert not _out(admin_client, "admin")


def test_an_admin_resetting_their_own_password_stays_signed_in(app, admin_client):
    admin = user("admin")
    other = _signed_in(app, "admin")
    prefix = f"u{admin.id}"
    data = {f"{prefix}-role": "admin", f"{prefix}-active": "y", f"{prefix}-password": STRONG}
    assert admin_client.post(f"/admin/users/{admin.id}", data=data).status_code == 302
    assert not _out(admin_client, "admin") and _out(other, "admin")


def _age(client, *, idle: float = 0, since: float = 0) -> None:
    """Move this session's last-seen and signed-in times into the past."""
    with client.session_transaction() as session:
        session[SEEN] -= int(idle)
        session[SINCE] -= int(since)


@pytest.mark.parametrize("role", ["owner", "admin"])
def test_owners_and_admins_are_logged_out_after_30_idle_minutes(app, role):
    client = _signed_in(app, role)
    _age(client, idle=29 * 60, since=5 * 3600)
    assert not _out(client, role)  # a request: seen again now
    _age(client, idle=31 * 60)
    r = client.get(HOME[role], follow_redirects=True)
    assert r.request.path == "/login"
    assert "logged out after 30 minutes without activity" in r.get_data(as_text=True)
    assert _out(client, role)  # and it stays out


def test_cashiers_stay_for_their_shift(app):
    client = _signed_in(app, "cashier")
    _age(client, idle=3 * 3600, since=11 * 3600)
    assert not _out(client, "cashier")
    _age(client, since=1.5 * 3600)  # now 12.5 hours after signing in
    r = client.get(HOME["cashier"], follow_redirects=True)
    assert r.request.path == "/login"
    assert "Your shift's session has ended." in html.unescape(r.get_data(as_text=True))


def test_a_cashier_idle_for_a_whole_shift_is_logged_out(app):
    client = _signed_in(app, "cashier")
    _age(client, idle=13 * 3600)
    assert _out(client, "cashier")


def test_an_expired_session_gets_the_counters_401(app):
    client = _signed_in(app, "owner")
    _age(client, idle=31 * 60)
    r = client.get("/owner/report", headers=HX)
    assert r.status_code == 401
    assert "You are logged out, so nothing was sent." in r.get_data(as_text=True)


def test_the_timeouts_are_configurable(app):
    app.config["IDLE_TIMEOUT_MINUTES"] = 5
    app.config["CASHIER_SESSION_HOURS"] = 1
    owner, cashier = _signed_in(app, "owner"), _signed_in(app, "cashier")
    _age(owner, idle=6 * 60)
    _age(cashier, since=61 * 60)
    assert _out(owner, "owner") and _out(cashier, "cashier")


def test_config_reads_the_two_settings():
    from app.config import from_env

    assert from_env({})["IDLE_TIMEOUT_MINUTES"] == 30
    assert from_env({})["CASHIER_SESSION_HOURS"] == 12
    cfg = from_env({"PESADESK_IDLE_TIMEOUT_MINUTES": "15", "PESADESK_CASHIER_SESSION_HOURS": "9.5"})
    assert cfg["IDLE_TIMEOUT_MINUTES"] == 15 and cfg["CASHIER_SESSION_HOURS"] == 9.5


def test_a_request_refreshes_last_seen_at_most_once_a_minute(app):
    client = _signed_in(app, "owner")
    with client.session_transaction() as session:
        first = session[SEEN]
    client.get("/owner/report")
    with client.session_transaction() as session:
        assert session[SEEN] == first
    _age(client, idle=61)
    client.get("/owner/report")
    with client.session_transaction() as session:
        assert session[SEEN] >= first
    db.session.remove()
