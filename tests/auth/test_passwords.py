"""One set of username and password rules, for the admin's form, "change my password" and
`flask users create`; usernames unique whatever their case."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from app.auth.passwords import password_problem, username_problem
from app.extensions import db
from app.models import AuditAction, User
from tests.auth.support import OTHER_STRONG, STRONG, alert, entries, sign_in, user
from tests.helpers import PASSWORD, login

WEAK = [
    ("short", "Ab3$xyz", "at least 10 characters"),
    ("common", "password123", "This is a very common password."),
    ("common-phrase", "iloveyou2024", "too easy to guess"),
    ("keyboard", "qwertyuiop", "too easy to guess"),
    ("the-username-and-a-year", "wanjiku2024", "too easy to guess"),
    ("the-username-twice", "wanjikuwanjiku", "Repeats like"),
    ("the-site", "pesadesk2024", "too easy to guess"),
]


@pytest.mark.parametrize(("name", "password", "words"), WEAK, ids=[w[0] for w in WEAK])
def test_weak_passwords_are_refused_with_the_reason(app, name, password, words):
    with app.test_request_context():
        problem = password_problem(password, "wanjiku")
    assert problem is not None and words in problem


def test_the_username_itself_is_refused_in_any_case(app):
    with app.test_request_context():
        assert password_problem("Kamau-Otieno", "kamau-otieno") == (
            "The password must not be the username."
        )


def test_strong_passwords_pass(app):
    with app.test_request_context():
        for password in (STRONG, OTHER_STRONG, PASSWORD, "correct horse battery staple"):
            assert password_problem(password, "wanjiku") is None, password
        assert password_problem("x" * 257, "wanjiku") == "Use at most 256 characters."
        # zxcvbn reads at most 72 characters; a longer strong password still passes.
        assert password_problem(STRONG * 5, "wanjiku") is None


def test_usernames_are_unique_whatever_their_case(app):
    with app.test_request_context():
        assert username_problem("OWNER") == "That username is taken."
        assert username_problem("  owner ") == "That username is taken."
        assert username_problem("Wanjiku") is None
        assert username_problem("wan jiku") == (
            "Use only letters, digits, dots, dashes and underscores."
        )
        assert username_problem("") == "Enter a username."
        assert username_problem("a" * 65) == "Use at most 64 characters for the username."
    # The database refuses too (a unique index on the lowercased name).
    db.session.add(User(username="Owner", role="owner", password_hash="x"))
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()


def test_admin_form_refuses_a_weak_password_beside_the_field(admin_client):
    r = admin_client.post(
        "/admin/users", data={"username": "wanjiku", "role": "owner", "password": "password123"}
    )
    assert r.status_code == 422
    assert "This is a very common password." in alert(r)
    html = r.get_data(as_text=True)
    assert 'id="password-error"' in html and 'aria-describedby="password-rules password-error"' in (
        html
    )
    assert db.session.execute(sa.select(User).where(User.username == "wanjiku")).first() is None


def test_admin_creates_a_mixed_case_name_that_signs_in_in_any_case(app, admin_client):
    r = admin_client.post(
        "/admin/users", data={"username": "Wanjiku", "role": "owner", "password": STRONG}
    )
    assert r.status_code == 302
    assert user("Wanjiku").username_key == "wanjiku"  # stored as typed, compared lowercased
    r = admin_client.post(
        "/admin/users", data={"username": "WANJIKU", "role": "cashier", "password": STRONG}
    )
    assert r.status_code == 422 and alert(r) == "That username is taken."
    client = app.test_client()
    r = sign_in(client, "wANJIKU", STRONG)
    assert r.status_code == 302 and r.headers["Location"].endswith("/owner/report")
    [created] = entries(AuditAction.USER_CREATED)
    assert created.detail == {"username": "Wanjiku", "role": "owner"}


def test_admin_password_reset_follows_the_rules(admin_client):
    cashier = user("cashier")
    prefix = f"u{cashier.id}"
    data = {f"{prefix}-role": "cashier", f"{prefix}-active": "y", f"{prefix}-password": "cashier"}
    r = admin_client.post(f"/admin/users/{cashier.id}", data=data)
    assert r.status_code == 422
    assert "at least 10 characters" in r.get_data(as_text=True)
    data[f"{prefix}-password"] = "cashiercashier"
    r = admin_client.post(f"/admin/users/{cashier.id}", data=data)
    assert r.status_code == 422 and "too easy to guess" in alert(r)
    assert user("cashier").check_password(PASSWORD)  # unchanged


# ---- the CLI --------------------------------------------------------------------------------
def _create(app, *args: str, password: str = STRONG):
    return app.test_cli_runner().invoke(
        args=["users", "create", *args], input=f"{password}\n{password}\n"
    )


@pytest.mark.parametrize(
    ("args", "password", "message"),
    [
        (["boss"], "short", "password: Use at least 10 characters."),
        (["boss"], "password123", "This is a very common password."),
        (["bosslady"], "Bosslady", "password: Use at least 10 characters."),
        (["Kamau-Otieno"], "kamau-otieno", "The password must not be the username."),
        (["OWNER", "--role", "owner"], STRONG, "That username is taken."),
        (["bad name"], STRONG, "Use only letters, digits, dots, dashes and underscores."),
        (["x" * 65], STRONG, "Use at most 64 characters for the username."),
    ],
)
def test_cli_applies_the_same_rules(app, args, password, message):
    result = _create(app, *args, password=password)
    assert result.exit_code == 1 and message in result.output, result.output
    assert db.session.execute(sa.select(sa.func.count()).select_from(User)).scalar() == 3


def test_cli_creates_a_user_and_audits_it(app):
    result = _create(app, "Boss.Lady", "--role", "owner")
    assert result.exit_code == 0, result.output
    created = user("Boss.Lady")
    assert created.role == "owner" and created.check_password(STRONG)
    [entry] = entries(AuditAction.USER_CREATED)
    assert entry.actor_id is None and entry.target == f"user:{created.id}"
    assert entry.detail == {"username": "Boss.Lady", "role": "owner", "by": "cli"}
    assert STRONG not in str(entry.detail)
    client = app.test_client()
    assert sign_in(client, "boss.lady", STRONG).status_code == 302


def test_change_password_page_follows_the_rules(owner_client):
    page = owner_client.get("/account/password")
    assert page.status_code == 200
    cases = [
        ({"current_password": "wrong-one", "new_password": STRONG, "confirm": STRONG},
         "current_password", "That is not your current password."),
        ({"current_password": PASSWORD, "new_password": "password123",
          "confirm": "password123"}, "new_password", "This is a very common password."),
        ({"current_password": PASSWORD, "new_password": "owner", "confirm": "owner"},
         "new_password", "Use at least 10 characters."),
        ({"current_password": PASSWORD, "new_password": STRONG, "confirm": OTHER_STRONG},
         "confirm", "The two new passwords differ."),
        ({"current_password": PASSWORD, "new_password": PASSWORD, "confirm": PASSWORD},
         "new_password", "Choose a password different from the current one."),
    ]  # fmt: skip
    for data, field, message in cases:
        r = owner_client.post("/account/password", data=data)
        assert r.status_code == 422, data
        html = r.get_data(as_text=True)
        assert f'id="{field}-error"' in html and message in html, (field, message)
        assert f'aria-describedby="{field}-error' in html or f'{field}-error"' in html
    assert user("owner").check_password(PASSWORD)
    r = owner_client.post(
        "/account/password",
        data={"current_password": PASSWORD, "new_password": STRONG, "confirm": STRONG},
    )
    assert r.status_code == 302
    assert user("owner").check_password(STRONG)
    [changed] = entries(AuditAction.PASSWORD_CHANGED)
    assert changed.actor_name == "owner" and changed.detail is None


def test_every_role_has_the_change_password_page(app):
    for role in ("cashier", "owner", "admin"):
        client = app.test_client()
        login(client, role)
        r = client.get("/account/password")
        assert r.status_code == 200, role
        assert r.get_data(as_text=True).count("<h1") == 1
