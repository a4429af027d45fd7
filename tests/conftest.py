"""Shared fixtures: the app on SQLite *and* PostgreSQL, logged-in clients, a live server."""

from __future__ import annotations

import contextlib
import functools
import os
import socket
import tempfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet
from werkzeug.serving import make_server

from app import create_app
from app.demo import simulator_till
from app.extensions import db
from app.models import Role, Till, User
from app.payments import journal, tills
from tests.helpers import PASSWORD, login

PG_ADMIN_URL = os.environ.get("PESADESK_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
BACKENDS = ("sqlite", "postgresql")


def _psycopg_url(url: str) -> str:
    return "postgresql+psycopg://" + url.split("://", 1)[1]


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A throwaway PostgreSQL database for this run; an unreachable server fails loudly."""
    admin = sa.create_engine(_psycopg_url(PG_ADMIN_URL), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text("select 1"))
    except Exception as exc:  # noqa: BLE001 - any failure here means "no PostgreSQL"
        pytest.fail(
            f"PostgreSQL is not reachable at {PG_ADMIN_URL} ({exc.__class__.__name__}). "
            "Start it (`.ci/run` does) or set PESADESK_TEST_PG_URL. "
            "Database tests run on SQLite AND PostgreSQL and are never skipped.",
            pytrace=False,
        )
    name = f"pesadesk_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextlib.contextmanager
def sibling_pg_database(base_url: str, suffix: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database next to `base_url`, dropped afterwards."""
    name = base_url.rsplit("/", 1)[1] + suffix
    admin = sa.create_engine(_psycopg_url(base_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield base_url.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def sqlite_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="pesadesk-test-") as tmp:
        yield Path(tmp)


_schema_ready: set[str] = set()


def make_test_app(database_url: str, instance: Path, **overrides):
    config = {
        "TESTING": True,
        "SECRET_KEY": "test-secret",
        "ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "SQLALCHEMY_DATABASE_URI": database_url,
        "WTF_CSRF_ENABLED": False,
        "DEMO": True,
        "SIMULATOR_ENABLED": True,
        "SIMULATOR_CALLBACK_DELAY": 0.3,
        "BASE_URL": "http://127.0.0.1:9",
        "SIMULATOR_URL": "http://127.0.0.1:9/simulator",
        "DARAJA_READ_TIMEOUT": 5.0,
        # Off by default in tests (race tests post 50 callbacks at once); the rate limit's
        # own tests switch it on.
        "CALLBACK_RATE_PER_S": 0,
    }
    config.update(overrides)
    os.environ.setdefault("PESADESK_INSTANCE_PATH", str(instance))
    application = create_app(config)

    @application.before_request
    def _forget_cached_user() -> None:
        # Test-client requests reuse the test's app context, and with it `g`, where
        # Flask-Login caches the user: forget it so each request reads its own session cookie.
        import flask_babel
        from flask import g

        g.pop("_login_user", None)
        flask_babel.refresh()  # likewise the locale Flask-Babel cached for the first request

    return application


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    return request.param


@pytest.fixture
def database_url(backend: str, request, sqlite_dir: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{sqlite_dir / 'test.db'}"
    return request.getfixturevalue("pg_database")


@pytest.fixture
def app(database_url: str, sqlite_dir: Path):
    """The app on one backend, with an empty schema and one demo-like till."""
    application = make_test_app(database_url, sqlite_dir)
    with application.app_context():
        if database_url not in _schema_ready:
            db.drop_all()
            db.create_all()
            _schema_ready.add(database_url)
        _truncate_all()
        seed_till_and_users()
        tills.reset_clients()
        # The push journal is a file in the instance folder, which every test shares.
        journal.path().unlink(missing_ok=True)
        yield application
        db.session.remove()
        journal.path().unlink(missing_ok=True)
        _truncate_all()
        db.engine.dispose()


def _clear_audit_log(conn) -> None:
    """The audit log refuses deletes (app/models/audit.py); a test database starts empty."""
    from app.models.audit import _NO_CHANGE_SQLITE

    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("ALTER TABLE audit_log DISABLE TRIGGER USER"))
        conn.execute(sa.text("DELETE FROM audit_log"))
        conn.execute(sa.text("ALTER TABLE audit_log ENABLE TRIGGER USER"))
        return
    for verb in ("update", "delete"):
        conn.execute(sa.text(f"DROP TRIGGER IF EXISTS audit_log_no_{verb}"))
    conn.execute(sa.text("DELETE FROM audit_log"))
    for ddl in _NO_CHANGE_SQLITE:
        conn.execute(sa.text(ddl.statement))


def _truncate_all() -> None:
    db.session.remove()
    with db.engine.begin() as conn:
        for table in reversed(db.metadata.sorted_tables):
            if table.name == "audit_log":
                _clear_audit_log(conn)
                continue
            conn.execute(table.delete())
        if conn.dialect.name == "postgresql":
            for table in db.metadata.sorted_tables:
                if "id" not in table.c:
                    continue
                conn.execute(
                    sa.text(
                        f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), 1, false)"
                    )
                )


@functools.cache
def _password_hash() -> str:
    from werkzeug.security import generate_password_hash

    return generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000")


def seed_till_and_users() -> None:
    till = simulator_till("Test Shop")
    db.session.add(till)
    for role in Role:
        # Hashing is deliberately slow; hash once per run, not per test.
        user = User(username=role.value, role=role, password_hash=_password_hash())
        db.session.add(user)
        if role == Role.CASHIER:
            till.cashiers.append(user)
    db.session.commit()


@pytest.fixture
def till(app) -> Till:
    return db.session.execute(sa.select(Till)).scalar_one()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def cashier_client(app):
    c = app.test_client()
    login(c, "cashier")
    return c


@pytest.fixture
def owner_client(app):
    c = app.test_client()
    login(c, "owner")
    return c


@pytest.fixture
def admin_client(app):
    c = app.test_client()
    login(c, "admin")
    return c


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def live_app(app):
    """Serve the app (with its embedded simulator) over real HTTP on 127.0.0.1.

    The simulator's callbacks come back to this server, exactly as in the demo.
    """
    server = make_server("127.0.0.1", 0, app, threaded=True)
    port = server.server_port
    app.config["BASE_URL"] = f"http://127.0.0.1:{port}"
    app.config["SIMULATOR_URL"] = f"http://127.0.0.1:{port}/simulator"
    tills.reset_clients()
    # A short poll interval: serve_forever's default 0.5 s is paid at every teardown.
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield app
    finally:
        from app.simulator.state import get_state

        # Wake held answers and cancel pending callbacks first, so nothing from this test
        # reaches the next one's database.
        get_state(app).reset()
        server.shutdown()
        thread.join(timeout=5)


@pytest.fixture
def make_payment(app, till):
    """Insert a payment directly (as if pushed), for tests that start mid-flow."""
    from datetime import timedelta

    from app.models import Payment
    from app.models.types import utcnow

    counter = iter(range(1, 10_000))

    def make(status: str = "pending", amount: int = 150, checkout: str | None = None, **kw):
        n = next(counter)
        cashier = db.session.execute(sa.select(User).where(User.username == "cashier")).scalar_one()
        now = utcnow()
        payment = Payment(
            till_id=kw.pop("till_id", till.id),
            cashier_id=kw.pop("cashier_id", cashier.id),
            idempotency_key=uuid.uuid4().hex,
            phone=kw.pop("phone", "254708374149"),
            amount_kes=amount,
            account_reference=kw.pop("account_reference", "Sale"),
            transaction_desc="Payment",
            status=status,
            checkout_request_id=checkout or f"ws_CO_TEST{n:06d}",
            merchant_request_id=f"29115-{n}-1",
            pushed_at=kw.pop("pushed_at", now),
            push_started_at=kw.pop("push_started_at", now),
            next_query_at=kw.pop("next_query_at", now + timedelta(seconds=25)),
            **kw,
        )
        db.session.add(payment)
        db.session.commit()
        return payment

    return make
