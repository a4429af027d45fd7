"""The admin's Users page: every change audited (never with a password), errors beside the
field they are about, and no input that makes it fail."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from bs4 import BeautifulSoup

from app.extensions import db
from app.models import AuditEntry, User
from tests.auth.support import STRONG, alert, sign_in
from tests.helpers import PASSWORD


def _user(name: str) -> User:
    db.session.expire_all()
    return db.session.execute(sa.select(User).where(User.username == name)).scalar_one()


def _log() -> list[tuple[str, str | None, str | None, dict | None]]:
    db.session.expire_all()
    rows = db.session.execute(sa.select(AuditEntry).order_by(AuditEntry.id)).scalars()
    return [(e.action, e.actor_name, e.target, e.detail) for e in rows]


def _edit(client, person: User, **fields: str):
    prefix = f"u{person.id}"
    data = {f"{prefix}-role": person.role, f"{prefix}-active": "y" if person.active else ""}
    data.update({f"{prefix}-{k}": v for k, v in fields.items()})
    return client.post(f"/admin/users/{person.id}", data=data)


def test_every_user_change_is_audited(app, admin_client):
    since = len(_log())
    new = {"username": "Akinyi", "role": "cashier", "password": STRONG}
    assert admin_client.post("/admin/users", data=new).status_code == 302
    akinyi = _user("Akinyi")
    target = f"user:{akinyi.id}"
    assert _edit(admin_client, akinyi, role="owner").status_code == 302
    assert _edit(admin_client, _user("Akinyi"), active="").status_code == 302
    assert _edit(admin_client, _user("Akinyi"), active="y").status_code == 302
    reset = _edit(admin_client, _user("Akinyi"), password="Another-strong-passphrase-9")
    assert reset.status_code == 302
    assert _edit(admin_client, _user("Akinyi")).status_code == 302  # nothing changed
    assert _log()[since:] == [
        ("user.created", "admin", target, {"username": "Akinyi", "role": "cashier"}),
        ("user.role_changed", "admin", target,
         {"username": "Akinyi", "from": "cashier", "to": "owner"}),
        ("user.deactivated", "admin", target, {"username": "Akinyi"}),
        ("user.reactivated", "admin", target, {"username": "Akinyi"}),
        ("user.password_reset", "admin", target, {"username": "Akinyi"}),
    ]  # fmt: skip
    everything = str(_log())
    assert STRONG not in everything and "Another-strong-passphrase-9" not in everything
    c = app.test_client()
    assert sign_in(c, "akinyi", "Another-strong-passphrase-9").status_code == 302


def test_sign_in_and_out_are_audited(app):
    client = app.test_client()
    sign_in(client, "owner", "wrong-guess", "10.40.0.1")
    sign_in(client, "owner", PASSWORD, "10.40.0.2")
    client.post("/logout", environ_base={"REMOTE_ADDR": "10.40.0.2"})
    owner = _user("owner")
    assert [(a, actor, t) for a, actor, t, _d in _log()] == [
        ("sign_in.failure", None, f"user:{owner.id}"),
        ("sign_in.success", "owner", f"user:{owner.id}"),
        ("sign_in.signed_out", "owner", f"user:{owner.id}"),
    ]
    assert _log()[0][3] == {"username": "owner", "reason": "wrong_password", "failures": 1}


def _field_error(response, field_id: str) -> str:
    soup = BeautifulSoup(response.get_data(as_text=True), "html.parser")
    error = soup.find(id=f"{field_id}-error")
    assert error is not None and error["role"] == "alert", field_id
    assert f"{field_id}-error" in soup.find(id=field_id)["aria-describedby"].split()
    assert soup.find(id=field_id)["aria-invalid"] == "true"
    return error.get_text()


@pytest.mark.parametrize(
    ("data", "field", "words"),
    [
        ({"username": "a" * 65}, "username", "at most 64"),
        ({"username": "ana maria"}, "username", "Use only letters"),
        ({"username": "Admin"}, "username", "That username is taken."),
        ({"username": ""}, "username", "required"),
        ({"role": "superuser"}, "role", "Not a valid choice"),
        ({"role": ["cashier", "owner"]}, "role", ""),
        ({"password": "x" * 257}, "password", "256"),
        ({"password": "short"}, "password", "at least 10"),
    ],
)
def test_new_user_refusals_sit_beside_the_field(admin_client, data, field, words):
    form = {"username": "newperson", "role": "cashier", "password": STRONG} | data
    r = admin_client.post("/admin/users", data=form)
    if field == "role" and isinstance(data["role"], list):
        # Two values for one select: WTForms takes the first; nothing breaks.
        assert r.status_code in (302, 422)
        return
    assert r.status_code == 422
    assert words in _field_error(r, field)
    assert db.session.execute(sa.select(User).where(User.username == "newperson")).first() is None


def test_edit_refusals_sit_beside_the_field(admin_client):
    cashier = _user("cashier")
    r = _edit(admin_client, cashier, role="root")
    assert r.status_code == 422
    assert "Not a valid choice" in _field_error(r, f"u{cashier.id}-role")
    r = _edit(admin_client, cashier, password="x" * 300)
    assert r.status_code == 422 and "256" in _field_error(r, f"u{cashier.id}-password")
    assert _user("cashier").role == "cashier"


def test_a_nul_anywhere_is_refused_before_the_form(admin_client, client):
    for url, data in (
        ("/admin/users", {"username": "nul\x00", "role": "cashier", "password": STRONG}),
        ("/login", {"username": "owner", "password": "pass\x00word"}),
        ("/account/password", {"current_password": "x\x00"}),
    ):
        r = admin_client.post(url, data=data)
        assert r.status_code == 400 and "NUL character" in r.get_data(as_text=True), url
    assert client.post("/login/code", data={"code": "\x00"}).status_code == 400


def test_the_users_page_shows_lock_and_two_factor_state(app, admin_client):
    owner = _user("owner")
    for i in range(20):
        sign_in(app.test_client(), "owner", "wrong-guess", f"10.50.0.{i}")
    soup = BeautifulSoup(admin_client.get("/admin/users").data, "html.parser")
    row = soup.find(id=f"user-{owner.id}")
    assert "Locked" in row.get_text() and "Two-factor sign-in off." in row.get_text()
    assert row.find("form", action=f"/admin/users/{owner.id}/unlock")
    assert len(soup.find_all("h1")) == 1
    for control in soup.select("input:not([type=hidden]), select"):
        assert soup.find("label", attrs={"for": control["id"]}), control["id"]
    policy = soup.find("form", action="/admin/users/two-factor")
    assert policy.find("legend").get_text() == "Require two-factor sign-in of"
    assert alert(admin_client.get("/admin/users")) == ""  # no error shown by default
