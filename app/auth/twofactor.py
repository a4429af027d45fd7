"""Two-factor sign-in with TOTP (RFC 6238, pyotp) for owners and admins.

The secret is encrypted at rest like till credentials (app.crypto). A code is accepted for
the current 30-second step or the one either side, and never twice: the step it matched is
claimed in the database, so two workers cannot both accept it. Ten one-time recovery codes
are shown once at enrolment and stored as SHA-256 digests (each is 80 random bits).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time

import pyotp
import segno
from markupsafe import Markup, escape
from sqlalchemy import delete, func, or_, select, update

from app.crypto import decrypt, encrypt
from app.extensions import db
from app.models import Role, User
from app.models.settings import get_setting, set_setting
from app.models.types import utcnow
from app.models.user import RecoveryCode

ISSUER = "PesaDesk"
#: roles that may enrol (and that an admin can require it of)
ROLES = (Role.OWNER, Role.ADMIN)
REQUIRED_SETTING = "two_factor_required_roles"
RECOVERY_CODES = 10
_STEP = 30
_CODE = re.compile(r"[0-9]{6}")
_RECOVERY = re.compile(r"[a-z2-7]{16}")


def may_enrol(user: User) -> bool:
    return user.role in ROLES


def required_roles() -> set[str]:
    """The roles an admin requires two-factor sign-in of (stored in the settings table)."""
    value = get_setting(REQUIRED_SETTING)
    return {role for role in value.split(",") if role in ROLES}


def set_required_roles(roles: set[str]) -> None:
    set_setting(REQUIRED_SETTING, ",".join(r for r in ROLES if r in roles))


def must_enrol(user: User) -> bool:
    """True for a user whose role requires two-factor sign-in and who has not enrolled."""
    if user.two_factor_enabled or not may_enrol(user):
        return False
    return user.role in required_roles()


# ---- enrolment ------------------------------------------------------------------------------
def pending_secret(user: User) -> str:
    """The secret being enrolled: made (and stored, encrypted) on first use, kept until it is
    confirmed or an admin resets two-factor sign-in. The caller commits."""
    if user.totp_secret_enc is None:
        user.totp_secret_enc = encrypt(pyotp.random_base32())
        user.totp_last_step = None
    return decrypt(user.totp_secret_enc)


def provisioning_uri(user: User, secret: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=user.username, issuer_name=ISSUER)


def qr_svg(uri: str, label: str) -> Markup:
    """The QR code of `uri` as inline SVG (drawn here: no outside service sees the secret)."""
    svg = segno.make(uri, error="m").svg_inline(
        scale=4, dark="#000", light="#fff", svgclass="qr", title=None
    )
    # segno draws the code as path data: no text of the URI appears in the SVG.
    labelled = svg.replace("<svg ", f'<svg role="img" aria-label="{escape(label)}" ', 1)
    return Markup(labelled)  # noqa: S704


def grouped(secret: str) -> str:
    """The secret in groups of four ("ABCD EFGH …"), easier to type into an app by hand."""
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def confirm(user: User, code: str) -> list[str] | None:
    """Turn two-factor sign-in on if `code` fits the pending secret: returns the recovery
    codes (to show once), or None. The caller audits and commits."""
    if user.totp_secret_enc is None or user.two_factor_enabled:
        return None
    if not verify_code(user, code):
        return None
    user.totp_enabled_at = utcnow()
    return new_recovery_codes(user)


def reset(user: User) -> None:
    """Forget the secret and the recovery codes (an admin's reset). The caller commits."""
    user.totp_secret_enc = None
    user.totp_enabled_at = None
    user.totp_last_step = None
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))


# ---- codes ----------------------------------------------------------------------------------
def verify_code(user: User, code: str, now: float | None = None) -> bool:
    """True if `code` is the TOTP of the current step (or one either side) and no code of
    that step or a later one was accepted before; the step is claimed in the database."""
    code = re.sub(r"\s", "", code or "")
    if not _CODE.fullmatch(code) or user.totp_secret_enc is None:
        return False
    totp = pyotp.TOTP(decrypt(user.totp_secret_enc))
    current = int(time.time() if now is None else now) // _STEP
    for step in (current - 1, current, current + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            claimed = db.session.execute(
                update(User)
                .where(
                    User.id == user.id,
                    or_(User.totp_last_step.is_(None), User.totp_last_step < step),
                )
                .values(totp_last_step=step)
                .execution_options(synchronize_session=False)
            ).rowcount
            if claimed:
                user.totp_last_step = step
            return bool(claimed)
    return False


def _digest(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def _normalised(code: str) -> str:
    return re.sub(r"[\s-]", "", code or "").lower()


def new_recovery_codes(user: User) -> list[str]:
    """Replace the user's recovery codes with RECOVERY_CODES new ones (returned, shown once)."""
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = base64.b32encode(secrets.token_bytes(10)).decode().lower()  # 16 characters
        codes.append("-".join(raw[i : i + 4] for i in range(0, 16, 4)))
        db.session.add(RecoveryCode(user_id=user.id, code_hash=_digest(raw)))
    return codes


def use_recovery_code(user: User, code: str) -> bool:
    """True, once, for each of the user's recovery codes (spaces, dashes and case ignored)."""
    raw = _normalised(code)
    if not _RECOVERY.fullmatch(raw):
        return False
    used = db.session.execute(
        update(RecoveryCode)
        .where(
            RecoveryCode.user_id == user.id,
            RecoveryCode.code_hash == _digest(raw),
            RecoveryCode.used_at.is_(None),
        )
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount
    return bool(used)


def recovery_codes_left(user: User) -> int:
    return db.session.execute(
        select(func.count())
        .select_from(RecoveryCode)
        .where(RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))
    ).scalar_one()


def looks_like_recovery_code(code: str) -> bool:
    return bool(_RECOVERY.fullmatch(_normalised(code)))
