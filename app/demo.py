"""Demo mode: seed a simulator-backed till and demo users, and serve everything in one process."""

from __future__ import annotations

import secrets
from pathlib import Path

from flask import Flask, current_app
from sqlalchemy import select

from app.config import SANDBOX_PASSKEY
from app.crypto import encrypt, hint
from app.extensions import db
from app.models import Role, Till, User

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


def simulator_till(name: str) -> Till:
    """A paybill on the sandbox shortcode 174379 whose Daraja is the built-in simulator."""
    till = Till(name=name, shortcode="174379", till_type="paybill", environment="simulator")
    for field, value in (
        ("consumer_key", DEMO_CONSUMER_KEY),
        ("consumer_secret", DEMO_CONSUMER_SECRET),
        ("passkey", SANDBOX_PASSKEY),
    ):
        setattr(till, f"{field}_enc", encrypt(value))
        setattr(till, f"{field}_hint", hint(value))
    return till


def seed_demo() -> str:
    """Create (or refresh) the demo till and users; returns the demo password."""
    if not current_app.config["DEMO"]:
        raise RuntimeError("demo data is only created in demo mode (PESADESK_DEMO=1)")
    password = demo_password(current_app)
    for username, role in DEMO_USERS:
        user = db.session.execute(
            select(User).where(User.username == username)
        ).scalar_one_or_none()
        if user is None:
            user = User(username=username, role=role)
            db.session.add(user)
        if not user.password_hash or not user.check_password(password):
            user.set_password(password)
    till = db.session.execute(select(Till).order_by(Till.id).limit(1)).scalar_one_or_none()
    if till is None:
        db.session.add(simulator_till("PesaDesk Demo Shop"))
    db.session.commit()
    return password
