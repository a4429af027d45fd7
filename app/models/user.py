"""Users of the dashboard and their roles; sign-in throttling and two-factor recovery codes."""

from __future__ import annotations

import enum
from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import ForeignKey, Index, LargeBinary, String
from sqlalchemy import false as sa_false
from sqlalchemy.orm import Mapped, mapped_column, validates
from werkzeug.security import check_password_hash, generate_password_hash

from app.extensions import db
from app.models.types import UTCDateTime, utcnow


class Role(enum.StrEnum):
    CASHIER = "cashier"
    OWNER = "owner"
    ADMIN = "admin"


def username_key(username: str) -> str:
    """The form of a username that uniqueness and sign-in compare: "Wanjiku" is "wanjiku"."""
    return username.strip().lower()


class User(UserMixin, db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: as typed when the user was created (shown everywhere)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    #: username_key(username), set with it: usernames are unique regardless of case
    username_key: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    #: one of Role; admin may do everything, owner sees reports, cashier takes payments
    role: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(default=True)
    #: UI language code ("en" or "sw"); English is the default
    language: Mapped[str] = mapped_column(String(5), default="en", server_default="en")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    #: part of every session's id (get_id): raising it ends every session of this user
    session_version: Mapped[int] = mapped_column(default=1, server_default="1")
    #: created by `flask demo seed`: cannot sign in when PESADESK_DEMO is off
    is_demo: Mapped[bool] = mapped_column(default=False, server_default=sa_false())
    #: TOTP secret (base32), encrypted with PESADESK_ENCRYPTION_KEY; set when enrolment
    #: starts, in use once totp_enabled_at is set
    totp_secret_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    totp_enabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: the last 30-second step whose code was accepted: a code is never accepted twice
    totp_last_step: Mapped[int | None] = mapped_column()

    @validates("username")
    def _keep_key(self, _key: str, value: str) -> str:
        self.username_key = username_key(value)
        return value

    def get_id(self) -> str:
        """Flask-Login keeps this in the session: a session of an older version is ended."""
        return f"{self.id}:{self.session_version}"

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password)

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    @property
    def is_active(self) -> bool:  # Flask-Login refuses inactive users
        return self.active

    @property
    def two_factor_enabled(self) -> bool:
        return self.totp_enabled_at is not None

    def has_role(self, *roles: Role) -> bool:
        """Admins pass every role check; others must hold one of the roles named."""
        return self.role == Role.ADMIN or self.role in roles


class RecoveryCode(db.Model):
    """A one-time two-factor recovery code, stored as its SHA-256 (codes are 80 random bits,
    so a fast hash cannot be reversed by guessing)."""

    __tablename__ = "user_recovery_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class SignInThrottle(db.Model):
    """Failed sign-ins per account name (scope "user", the username_key of what was typed,
    existing or not) and per client address (scope "addr"). Kept in the database so every
    worker and host counts together (app/auth/throttle.py)."""

    __tablename__ = "sign_in_throttles"
    __table_args__ = (Index("ix_sign_in_throttles_last_failure_at", "last_failure_at"),)

    scope: Mapped[str] = mapped_column(String(8), primary_key=True)
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    failures: Mapped[int] = mapped_column(default=0, server_default="0")
    last_failure_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: last_failure_at before the latest attempt (what the latest attempt was judged by)
    prev_failure_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: set at the LOCK_AFTER-th failure of an account; only an admin clears it
    locked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
