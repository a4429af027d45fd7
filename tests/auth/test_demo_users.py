"""Outside demo mode the demo users (whose password `make run` prints) cannot sign in, and the
start-up log says so once."""

from __future__ import annotations

import logging

import pytest
import sqlalchemy as sa

from app.demo import DEMO_USERS, seed_demo
from app.extensions import db
from app.models import AuditAction, User
from tests.auth.support import alert, entries, sign_in

WRONG = "Wrong username or password."


def _seed_demo_users(app) -> str:
    """Run the real `flask demo seed` on the test database: it takes over the users named like
    the demo's (as on an install that once ran `make run`) and marks them."""
    app.config["DEMO"] = True
    password = seed_demo()
    assert {u.username for u in db.session.execute(sa.select(User)).scalars() if u.is_demo} == {
        name for name, _ in DEMO_USERS
    }
    return password


def test_demo_users_sign_in_only_in_demo_mode(app, client, monkeypatch):
    monkeypatch.setenv("PESADESK_DEMO_PASSWORD", "demo-password-for-tests")
    password = _seed_demo_users(app)
    r = sign_in(client, "owner", password)
    assert r.status_code == 302  # demo mode: fine
    client.post("/logout")
    app.config["DEMO"] = False
    for name, _role in DEMO_USERS:
        r = sign_in(client, name, password, f"10.30.0.{len(name)}")
        assert r.status_code == 200 and alert(r) == WRONG, name
    failed = entries(AuditAction.SIGN_IN_FAILED)
    assert [e.detail["reason"] for e in failed] == ["demo_user_outside_demo"] * 3
    # A user an admin created (not by the demo seed) signs in as usual.
    from tests.helpers import PASSWORD

    other = User(username="wanjiru", role="owner")
    other.set_password(PASSWORD)
    db.session.add(other)
    db.session.commit()
    assert sign_in(client, "wanjiru", PASSWORD).status_code == 302


def test_the_start_up_log_names_them_once(app, database_url, sqlite_dir, caplog, monkeypatch):
    from tests.conftest import make_test_app

    monkeypatch.setenv("PESADESK_DEMO_PASSWORD", "demo-password-for-tests")
    _seed_demo_users(app)
    caplog.set_level(logging.WARNING, logger="app.demo")
    statements = []

    def count(_conn, _cursor, statement, *_args):
        statements.append(statement)

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", count)
    try:
        other = make_test_app(database_url, sqlite_dir, DEMO=False)
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", count)
    warnings = [r for r in caplog.records if r.name == "app.demo"]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
    message = warnings[0].getMessage()
    assert "PESADESK_DEMO is off, so the demo users" in message and "cannot sign in" in message
    assert all(name in message for name, _ in DEMO_USERS)
    assert len([s for s in statements if "users" in s]) == 1  # one query
    with other.app_context():
        db.engine.dispose()
    # In demo mode, nothing to say.
    caplog.clear()
    make_test_app(database_url, sqlite_dir, DEMO=True)
    assert not [r for r in caplog.records if r.name == "app.demo"]


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://nobody@127.0.0.1:1/nothing",  # nothing listens there
        "sqlite://",  # in memory: no tables
    ],
)
def test_an_unreachable_or_empty_database_is_skipped(sqlite_dir, caplog, url):
    from tests.conftest import make_test_app

    caplog.set_level(logging.DEBUG, logger="app.demo")
    make_test_app(url, sqlite_dir, DEMO=False)  # no error, no wait
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_database_not_yet_migrated_is_skipped(sqlite_dir, caplog, tmp_path):
    from tests.conftest import make_test_app

    path = tmp_path / "old.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE users (id INTEGER PRIMARY KEY, username TEXT)"))
    engine.dispose()
    caplog.set_level(logging.DEBUG, logger="app.demo")
    make_test_app(f"sqlite:///{path}", sqlite_dir, DEMO=False)
    assert [r.getMessage() for r in caplog.records if r.name == "app.demo"] == [
        "demo users not checked: OperationalError"
    ]
