"""Demo mode: seed a simulator-backed till and demo users, and serve everything in one process."""

from __future__ import annotations

import secrets
from pathlib import Path

from flask import Flask, current_app
from sqlalchemy import select

from app.config import SANDBOX_PASSKEY
from app.crypto import encrypt
from app.extensions import db
from app.models import Role, Shop, Till, User

# The keys the built-in simulator accepts; deliberately nothing like a real Daraja key.
from app.simulator.settings import DEMO_CONSUMER_KEY, DEMO_CONSUMER_SECRET

DEMO_USERS = (("cashier", Role.CASHIER), ("owner", Role.OWNER), ("admin", Role.ADMIN))


def demo_password(app: Flask) -> str:
    """PESADESK_DEMO_PASSWORD if set; else one generated once and kept in instance/."""
    import os

    given = os.environ.get("PESADESK_DEMO_PASSWORD")
    if given:
        return given
    path = Path(app.instance_path) / "demo_password"
    if path.exists():
        return path.read_text().strip()
    value = secrets.token_urlsafe(9)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(value)
    path.chmod(0o600)
    return value


def simulator_till(name: str, shop: Shop | None = None) -> Till:
    """A paybill on the sandbox shortcode 174379 whose Daraja is the built-in simulator (in a
    shop of its own name unless one is given)."""
    till = Till(
        name=name,
        shortcode="174379",
        till_type="paybill",
        environment="simulator",
        shop=shop or Shop(name=name),
    )
    for field, value in (
        ("consumer_key", DEMO_CONSUMER_KEY),
        ("consumer_secret", DEMO_CONSUMER_SECRET),
        ("passkey", SANDBOX_PASSKEY),
    ):
        setattr(till, f"{field}_enc", encrypt(value))
    return till


def seed_demo() -> str:
    """Create (or refresh) the demo till and users; returns the demo password."""
    if not current_app.config["DEMO"]:
        raise RuntimeError("demo data is only created in demo mode (PESADESK_DEMO=1)")
    password = demo_password(current_app)
    for username, role in DEMO_USERS:
        user = db.session.execute(
            select(User).where(User.username_key == username)
        ).scalar_one_or_none()
        if user is None:
            user = User(username=username, role=role)
            db.session.add(user)
        # Marked, so that they cannot sign in once PESADESK_DEMO is off (their password is
        # printed by `make run`).
        user.is_demo = True
        if not user.password_hash or not user.check_password(password):
            user.set_password(password)
    till = db.session.execute(select(Till).order_by(Till.id).limit(1)).scalar_one_or_none()
    if till is None:
        till = simulator_till("PesaDesk Demo Shop")
        db.session.add(till)
    # The demo cashier works at the demo till.
    cashier = db.session.execute(select(User).where(User.username == "cashier")).scalar_one()
    if cashier not in till.cashiers:
        till.cashiers.append(cashier)
    db.session.commit()
    return password


def warn_about_demo_users(app: Flask) -> None:
    """Outside demo mode, log once at start-up that the demo users exist and cannot sign in.

    One query, on a connection of its own that gives up quickly: a database that is not
    reachable yet, or not migrated yet, is not a reason to fail (or wait) at start-up."""
    import logging

    import sqlalchemy as sa
    from sqlalchemy.exc import SQLAlchemyError

    log = logging.getLogger("app.demo")
    uri = app.config.get("SQLALCHEMY_DATABASE_URI") or ""
    if uri.startswith("postgresql"):
        connect_args = {"connect_timeout": 3}
    elif uri.startswith("sqlite"):
        connect_args = {"timeout": 3}
        path = uri.split(":///", 1)[-1] if ":///" in uri else ""
        if not path or path == ":memory:" or not Path(path).exists():
            return  # no file yet (or an in-memory database): no users in it
    else:
        connect_args = {}
    users = User.__table__
    try:
        engine = sa.create_engine(uri, poolclass=sa.pool.NullPool, connect_args=connect_args)
        try:
            with engine.connect() as conn:
                query = sa.select(users.c.username).where(users.c.is_demo).order_by(users.c.id)
                names = conn.execute(query).scalars().all()
        finally:
            engine.dispose()
    except SQLAlchemyError as exc:
        log.debug("demo users not checked: %s", exc.__class__.__name__)
        return
    if names:
        log.warning(
            "PESADESK_DEMO is off, so the demo users %s cannot sign in. Create your own users "
            "(flask --app wsgi users create) and deactivate these on the Users page.",
            ", ".join(names),
        )
