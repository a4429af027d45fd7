"""Login, logout, hashed passwords and CSRF on forms."""

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import User
from tests.helpers import PASSWORD


def test_passwords_are_hashed(app):
    user = db.session.execute(sa.select(User).where(User.username == "cashier")).scalar_one()
    assert PASSWORD not in user.password_hash
    assert user.check_password(PASSWORD) and not user.check_password("wrong")


def test_login_lands_on_role_home(client):
    r = client.post("/login", data={"username": "owner", "password": PASSWORD})
    assert r.status_code == 302 and r.headers["Location"].endswith("/owner/report")


def test_wrong_password_stays_on_login(client):
    r = client.post("/login", data={"username": "owner", "password": "nope"})
    assert r.status_code == 200 and b"Wrong username or password" in r.data
    assert client.get("/owner/report").status_code == 302


def test_disabled_user_cannot_log_in(client):
    user = db.session.execute(sa.select(User).where(User.username == "cashier")).scalar_one()
    user.active = False
    db.session.commit()
    r = client.post("/login", data={"username": "cashier", "password": PASSWORD})
    assert r.status_code == 200


def test_next_must_be_local(client):
    r = client.post(
        "/login?next=//evil.example/x", data={"username": "owner", "password": PASSWORD}
    )
    assert r.headers["Location"].endswith("/owner/report")


def test_logout(cashier_client):
    assert cashier_client.post("/logout").status_code == 302
    assert cashier_client.get("/cashier/").status_code == 302


def test_csrf_is_enforced_on_forms_but_not_on_the_callback(app, till):
    app.config["WTF_CSRF_ENABLED"] = True
    client = app.test_client()
    # Login form without a token is refused (re-rendered, not logged in).
    client.post("/login", data={"username": "cashier", "password": PASSWORD})
    assert client.get("/cashier/").status_code == 302
    # With the token from the page it works.
    page = client.get("/login").get_data(as_text=True)
    token = page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
    r = client.post(
        "/login", data={"username": "cashier", "password": PASSWORD, "csrf_token": token}
    )
    assert r.status_code == 302
    # A logged-in POST without the token is refused.
    assert client.post("/logout").status_code == 400
    assert client.post(
        "/cashier/payments", data={"phone": "0708374149", "amount": "5"}
    ).status_code in (400, 422)
    # The callback needs no token (Safaricom cannot send one): unknown token gives 403, not 400.
    r = client.post("/cb/stk/wrong", json={})
    assert r.status_code == 403
    r = client.post(f"/cb/stk/{till.callback_token}", json={"Body": {}})
    assert r.status_code == 400  # stored and refused as not-a-callback, not a CSRF error


def test_cli_creates_an_admin(app):
    result = app.test_cli_runner().invoke(
        args=["users", "create", "boss", "--role", "admin"],
        input="Kilimanjaro-jacaranda-7\nKilimanjaro-jacaranda-7\n",
    )
    assert result.exit_code == 0, result.output
    user = db.session.execute(sa.select(User).where(User.username == "boss")).scalar_one()
    assert user.role == "admin" and user.check_password("Kilimanjaro-jacaranda-7")


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example/x",
        "/\t/evil.example",
        "/\n/evil.example",
        "https://evil.example",
        "/\\evil.example",
        " /cashier/",
        "/ /evil.example",
    ],
)
def test_next_cannot_leave_the_site(client, target):
    r = client.post(
        "/login", query_string={"next": target}, data={"username": "owner", "password": PASSWORD}
    )
    location = r.headers["Location"]
    assert location.endswith("/owner/report"), location
    assert "evil" not in location
