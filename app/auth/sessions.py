"""Sessions that end: by version (another session's logout, a password change or reset, a
deactivation, a two-factor reset) and by time (owners and admins after
PESADESK_IDLE_TIMEOUT_MINUTES idle, cashiers PESADESK_CASHIER_SESSION_HOURS after signing in).

Flask-Login keeps `User.get_id()` ("<id>:<session_version>") in the signed session cookie;
the user loader below refuses a session whose version is no longer the user's, or whose
last-seen time is too old. It runs once per request that looks at the user, with the one
query that loads the user anyway.
"""

from __future__ import annotations

import time

from flask import current_app, g, session
from flask_login import login_user
from sqlalchemy import update

from app.extensions import db
from app.models import Role, User

SINCE = "_signed_in_at"
SEEN = "_seen_at"
#: the last-seen time is rewritten at most this often (each write is a new cookie)
_SEEN_RESOLUTION = 60
_LOGIN_KEYS = ("_user_id", "_fresh", "_id", SINCE, SEEN)


def start(user: User) -> None:
    """Sign `user` in on this session (after every check has passed)."""
    session.pop("_two_factor", None)
    login_user(user)
    now = int(time.time())
    session[SINCE] = now
    session[SEEN] = now


def end_other_sessions(user: User, *, keep_this: bool = False) -> None:
    """Raise the user's session version, so every session signed in before ends at its next
    request; with `keep_this`, this session carries on with the new version. Commits."""
    db.session.execute(
        update(User)
        .where(User.id == user.id)
        .values(session_version=User.session_version + 1)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    db.session.refresh(user)
    if keep_this:
        since, seen = session.get(SINCE), session.get(SEEN)
        login_user(user)
        session[SINCE], session[SEEN] = since, seen


def _forget_login() -> None:
    for key in _LOGIN_KEYS:
        session.pop(key, None)


def ended(reason: str) -> None:
    """Drop the login from this session and say why (read by the unauthorized handler)."""
    _forget_login()
    g.session_ended = reason


def limits(user: User) -> tuple[int | None, int | None]:
    """(most seconds idle, most seconds since signing in) for the user's role."""
    cfg = current_app.config
    if user.role == Role.CASHIER:
        shift = int(float(cfg.get("CASHIER_SESSION_HOURS", 12)) * 3600)
        return shift, shift
    return int(float(cfg.get("IDLE_TIMEOUT_MINUTES", 30)) * 60), None


def load(user_id: str) -> User | None:
    """Flask-Login's user loader: the user of this session, or None if it has ended."""
    ident, _, version = (user_id or "").partition(":")
    if not (ident.isascii() and ident.isdigit() and version.isascii() and version.isdigit()):
        ended("version")  # a session from before versions, or not ours
        return None
    if len(ident) > 10 or len(version) > 10:
        ended("version")
        return None
    user = db.session.get(User, int(ident))
    if user is None or not user.active or user.session_version != int(version):
        ended("version")
        return None
    now = int(time.time())
    seen, since = session.get(SEEN), session.get(SINCE)
    if not isinstance(seen, int) or not isinstance(since, int):
        seen = since = now  # signed in before these were kept: start counting now
        session[SEEN], session[SINCE] = now, now
    idle_limit, total_limit = limits(user)
    if (idle_limit is not None and now - seen > idle_limit) or (
        total_limit is not None and now - since > total_limit
    ):
        ended("idle" if user.role != Role.CASHIER else "shift")
        g.session_ended_minutes = (idle_limit or 0) // 60
        return None
    if now - seen >= _SEEN_RESOLUTION:
        session[SEEN] = now
    return user
