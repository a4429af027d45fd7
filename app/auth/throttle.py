"""Sign-in throttling per account name and per client address, kept in the database.

Every attempt (a password, a two-factor code, the current password on the "change my
password" page) is first counted as a failure, atomically and in its own transaction, and
only then judged by the state it found: so parallel requests, workers and hosts cannot slip
extra guesses past the limit, and an attempt made while refused counts too. An attempt that
succeeds gives its count back.

- After DELAY_AFTER failures, the next attempt must wait delay_for(failures) seconds
  (1, 2, 4 … capped at MAX_DELAY); one made sooner is refused unchecked and counted.
- After LOCK_AFTER failures an account name is locked until an admin unlocks it (an address
  is only ever slowed down).
- Counting restarts when the previous failure is older than the scope's WINDOW (never for a
  locked account).

Accounts are counted by the name typed (its username_key), whether or not such a user
exists, so a name nobody has behaves exactly like a real one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import request
from sqlalchemy import and_, case, delete, literal, null, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from app.extensions import db
from app.models.types import UTCDateTime, db_now
from app.models.user import SignInThrottle

USER = "user"
ADDRESS = "addr"
DELAY_AFTER = 5
LOCK_AFTER = 20
MAX_DELAY = 15 * 60
WINDOW = {USER: timedelta(hours=24), ADDRESS: timedelta(hours=1)}
_KEY_MAX = 128


def delay_for(failures: int) -> int:
    """Seconds to wait after `failures` failures: 0 below DELAY_AFTER, then 2^(n-5), capped."""
    if failures < DELAY_AFTER:
        return 0
    return min(2 ** min(failures - DELAY_AFTER, 20), MAX_DELAY)


def client_address() -> str:
    """The client's address (as PESADESK_TRUSTED_PROXIES lets werkzeug see it)."""
    return (request.remote_addr or "unknown")[:_KEY_MAX]


@dataclass(frozen=True)
class Count:
    """One scope's row after counting this attempt."""

    failures: int
    #: seconds this attempt came too early by (it is refused when > 0)
    early_by: int
    locked: bool
    #: this attempt was the one that locked the account
    just_locked: bool


@dataclass(frozen=True)
class Attempt:
    user_key: str
    address: str
    now: datetime
    user: Count
    address_count: Count

    @property
    def locked(self) -> bool:
        return self.user.locked

    @property
    def refused(self) -> str | None:
        """Why this attempt may not be checked at all ("locked", "throttled"), or None."""
        if self.user.locked and not self.user.just_locked:
            return "locked"
        if self.user.early_by > 0 or self.address_count.early_by > 0:
            return "locked" if self.user.just_locked else "throttled"
        return None

    @property
    def wait(self) -> int:
        """Seconds before the next attempt may be checked, if this one fails."""
        return max(delay_for(self.user.failures), delay_for(self.address_count.failures))


def _insert():
    return pg_insert if db.engine.dialect.name == "postgresql" else sqlite_insert


def _count(scope: str, key: str, now: datetime) -> Count:
    table = SignInThrottle.__table__
    c = table.c
    at = literal(now, UTCDateTime())
    restart = and_(c.locked_at.is_(None), c.last_failure_at < now - WINDOW[scope])
    failures = case((restart, 1), else_=c.failures + 1)
    # Every right-hand side reads the row as it was (SQL UPDATE semantics).
    changes = {
        "failures": failures,
        "prev_failure_at": case((restart, null()), else_=c.last_failure_at),
        "last_failure_at": at,
    }
    if scope == USER:
        changes["locked_at"] = case(
            (and_(c.locked_at.is_(None), failures >= LOCK_AFTER), at), else_=c.locked_at
        )
    statement = (
        _insert()(table)
        .values(scope=scope, key=key, failures=1, last_failure_at=now)
        .on_conflict_do_update(index_elements=[c.scope, c.key], set_=changes)
        .returning(c.failures, c.prev_failure_at, c.locked_at)
    )
    row = db.session.execute(statement).one()
    early_by = 0
    delay = delay_for(row.failures - 1)
    # (No delay, no wait: parallel attempts may reach the row out of the order of their `now`.)
    if row.prev_failure_at is not None and delay:
        allowed_at = row.prev_failure_at + timedelta(seconds=delay)
        early_by = max(0, math.ceil((allowed_at - now).total_seconds()))
    locked = row.locked_at is not None
    return Count(
        failures=row.failures,
        early_by=early_by,
        locked=locked,
        just_locked=locked and row.failures == LOCK_AFTER,
    )


def begin(user_key: str, address: str | None = None) -> Attempt:
    """Count an attempt for this account name and address, commit, and say how it stands."""
    user_key = user_key[:_KEY_MAX]
    address = (address if address is not None else client_address())[:_KEY_MAX]
    now = db_now()
    user = _count(USER, user_key, now)
    address_count = _count(ADDRESS, address, now)
    db.session.commit()
    return Attempt(user_key, address, now, user, address_count)


def give_back(attempt: Attempt, *, reset_account: bool) -> None:
    """The attempt succeeded: its address count is returned, and the account's count is
    cleared (`reset_account`, a completed sign-in) or returned (a password right but a
    two-factor code still to come). The caller commits."""
    table = SignInThrottle.__table__
    c = table.c
    db.session.execute(
        update(table)
        .where(c.scope == ADDRESS, c.key == attempt.address, c.failures > 0)
        .values(failures=c.failures - 1)
    )
    mine = and_(c.scope == USER, c.key == attempt.user_key)
    if not attempt.user.just_locked:  # a lock this very attempt set is undone by its success
        mine = and_(mine, c.locked_at.is_(None))
    if reset_account:
        db.session.execute(delete(table).where(mine))
        # Forget rows nobody has failed from for a day (a cheap, indexed delete).
        stale = attempt.now - max(WINDOW.values())
        db.session.execute(delete(table).where(c.locked_at.is_(None), c.last_failure_at < stale))
    else:
        db.session.execute(
            update(table).where(mine, c.failures > 0).values(failures=c.failures - 1)
        )


def unlock(user_key: str) -> bool:
    """Clear an account's failures and lock (an admin's Unlock); the caller commits."""
    table = SignInThrottle.__table__
    c = table.c
    return bool(
        db.session.execute(delete(table).where(c.scope == USER, c.key == user_key)).rowcount
    )


def locked_keys(user_keys: list[str]) -> set[str]:
    """Which of these account names are locked."""
    if not user_keys:
        return set()
    c = SignInThrottle.__table__.c
    return set(
        db.session.execute(
            select(c.key).where(c.scope == USER, c.key.in_(user_keys), c.locked_at.is_not(None))
        ).scalars()
    )
