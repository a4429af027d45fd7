"""Helpers for the sign-in tests: attempts from a given address, the audit log, the clock."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from bs4 import BeautifulSoup

from app.extensions import db
from app.models import AuditEntry, User
from app.models.user import SignInThrottle

#: strong enough for the rules (zxcvbn score 4), and not any test user's name
STRONG = "Kilimanjaro-jacaranda-7"
OTHER_STRONG = "Turquoise-baobab-harbour-42"


def sign_in(client, username: str, password: str, address: str = "127.0.0.1"):
    """POST the login form as if from `address`."""
    return client.post(
        "/login",
        data={"username": username, "password": password},
        environ_base={"REMOTE_ADDR": address},
    )


def alert(response) -> str:
    """The text of the page's first role=alert element ("" if none)."""
    found = BeautifulSoup(response.get_data(as_text=True), "html.parser").find(role="alert")
    return found.get_text(" ", strip=True) if found else ""


def user(name: str) -> User:
    db.session.expire_all()
    return db.session.execute(sa.select(User).where(User.username == name)).scalar_one()


def entries(*actions: str) -> list[AuditEntry]:
    db.session.expire_all()
    query = sa.select(AuditEntry).order_by(AuditEntry.id)
    if actions:
        query = query.where(AuditEntry.action.in_(actions))
    return list(db.session.execute(query).scalars())


def age_failures(seconds: float) -> None:
    """Move every recorded failure `seconds` into the past (instead of sleeping)."""
    db.session.expire_all()
    for row in db.session.execute(sa.select(SignInThrottle)).scalars():
        row.last_failure_at -= timedelta(seconds=seconds)
        if row.prev_failure_at is not None:
            row.prev_failure_at -= timedelta(seconds=seconds)
    db.session.commit()


def forget_failures() -> None:
    db.session.execute(sa.delete(SignInThrottle))
    db.session.commit()
