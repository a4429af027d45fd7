"""Shops and their tills as an admin sets them up: save, archive, rotate the callback token,
check the connection, and the till each cashier works at."""

from __future__ import annotations

import hashlib
import ipaddress
import socket
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from flask import current_app, session
from flask_babel import gettext
from sqlalchemy import and_, or_, select, update

from app import audit
from app.crypto import SecretUnavailable, decrypt, encrypt, fernet
from app.daraja.client import DarajaClient
from app.daraja.errors import (
    DarajaAuthError,
    DarajaBadRequest,
    DarajaConnectionError,
    DarajaError,
    DarajaMerchantNotFound,
    DarajaTimeout,
    DarajaWrongCredentials,
)
from app.daraja.tokens import MemoryTokenStore
from app.extensions import db
from app.i18n import N_
from app.models import AuditAction, Role, Shop, Till, User
from app.models.till import ENVIRONMENTS, new_callback_token
from app.models.types import db_now, utcnow
from app.payments import tills as daraja_tills
from app.payments.token_store import DatabaseTokenStore, forget_tokens

SECRET_FIELDS = ("consumer_key", "consumer_secret", "passkey")
#: the session key holding the till a cashier picked for this login
SESSION_TILL = "till_id"


# --- Secrets: shown as a fingerprint, never any part of their value --------------------------


def fingerprint(secret: str) -> str:
    """Eight hex characters of the secret's SHA-256: enough to tell two secrets apart at a
    glance, nothing of the secret itself (its last characters would be)."""
    return hashlib.sha256(secret.encode()).hexdigest()[:8]


def fingerprints(till: Till) -> dict[str, str | None]:
    """Field → fingerprint of the stored secret, None when none is stored or readable."""
    found: dict[str, str | None] = {}
    for name in SECRET_FIELDS:
        try:
            found[name] = fingerprint(decrypt(getattr(till, f"{name}_enc")))
        except SecretUnavailable:
            found[name] = None
    return found


# --- Saving -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TillSettings:
    """What the till form gives, already validated (app/admin/forms.py)."""

    shop_id: int
    name: str
    till_type: str
    shortcode: str
    till_number: str | None
    environment: str
    query_budget_per_s: float
    allow_ported_numbers: bool
    secrets: dict[str, str]  # field → new value; a blank field is left out (keep the old)
    cashier_ids: list[int]


def save_till(till: Till | None, settings: TillSettings) -> Till:
    """Create or update a till; the audit log says what changed (never a secret's value)."""
    creating = till is None
    till = till or Till()
    before = {} if creating else _describe(till)
    till.shop_id = settings.shop_id
    till.name = settings.name
    till.till_type = settings.till_type
    till.shortcode = settings.shortcode
    till.till_number = settings.till_number
    till.environment = settings.environment
    till.query_budget_per_s = settings.query_budget_per_s
    till.allow_ported_numbers = settings.allow_ported_numbers
    for name, value in settings.secrets.items():
        setattr(till, f"{name}_enc", encrypt(value))
    till.cashiers = list(
        db.session.execute(select(User).where(User.id.in_(settings.cashier_ids))).scalars()
    )
    db.session.add(till)
    db.session.flush()
    target = audit.target_of("till", till.id)
    if creating:
        audit.record(AuditAction.TILL_CREATED, target=target, detail=_describe(till))
    else:
        changed = {
            k: f"{before.get(k)} -> {v}" for k, v in _describe(till).items() if before.get(k) != v
        }
        if changed:
            audit.record(AuditAction.TILL_CHANGED, target=target, detail=changed)
    if settings.secrets:
        audit.record(
            AuditAction.CREDENTIALS_REPLACED,
            target=target,
            detail={name: fingerprint(value) for name, value in settings.secrets.items()},
        )
    db.session.commit()
    if settings.secrets:
        # New credentials: the old token belongs to another Daraja app (or none).
        forget_tokens(db.engine, till.id)
    daraja_tills.reset_clients()
    return till


def _describe(till: Till) -> dict[str, object]:
    return {
        "shop": till.shop_id,
        "name": till.name,
        "type": till.till_type,
        "shortcode": till.shortcode,
        "till_number": till.till_number,
        "environment": till.environment,
        "query_budget_per_s": till.query_budget_per_s,
        "allow_ported_numbers": till.allow_ported_numbers,
        "cashiers": ",".join(str(u.id) for u in till.cashiers),
    }


def missing_secrets(till: Till | None, given: dict[str, str]) -> list[str]:
    """The secrets a till would still lack after saving `given`."""
    return [
        name
        for name in SECRET_FIELDS
        if name not in given and (till is None or not getattr(till, f"{name}_enc"))
    ]


def set_archived(till: Till, archived: bool) -> None:
    """Archive (no new sales; everything recorded stays) or bring a till back."""
    till.archived_at = utcnow() if archived else None
    audit.record(
        AuditAction.TILL_ARCHIVED if archived else AuditAction.TILL_RESTORED,
        target=audit.target_of("till", till.id),
    )
    db.session.commit()


def save_shop(shop: Shop | None, name: str) -> Shop:
    creating = shop is None
    shop = shop or Shop()
    old = shop.name
    shop.name = name
    db.session.add(shop)
    db.session.flush()
    audit.record(
        AuditAction.SHOP_CREATED if creating else AuditAction.SHOP_CHANGED,
        target=audit.target_of("shop", shop.id),
        detail={"name": name} if creating else {"name": f"{old} -> {name}"},
    )
    db.session.commit()
    return shop


# --- The callback URL: rotation and the warnings a production till deserves -------------------


def rotate_callback_token(till: Till) -> datetime:
    """A new secret in the till's callback URL. The old one keeps working for the grace
    period (pushes already sent carry it), then answers 403. Returns when it stops."""
    grace = timedelta(hours=current_app.config["CALLBACK_TOKEN_GRACE_HOURS"])
    until = db_now() + grace
    till.previous_callback_token = till.callback_token
    till.previous_token_until = until
    till.callback_token = new_callback_token()
    audit.record(
        AuditAction.TOKEN_ROTATED,
        target=audit.target_of("till", till.id),
        detail={"old_token_until": until.isoformat(timespec="seconds")},
    )
    db.session.commit()
    return until


def till_for_callback_token(token: str) -> int | None:
    """The till whose callback URL carries `token`: its current one, or the previous one
    within its grace period."""
    return db.session.execute(
        select(Till.id).where(
            or_(
                Till.callback_token == token,
                and_(Till.previous_callback_token == token, Till.previous_token_until > utcnow()),
            )
        )
    ).scalar_one_or_none()


def count_refusal(till_id: int, why: str) -> None:
    """A callback refused at this till's URL: counted and kept for the till page (one
    UPDATE, so a flood of refusals costs little)."""
    db.session.execute(
        update(Till)
        .where(Till.id == till_id)
        .values(
            callbacks_refused=Till.callbacks_refused + 1,
            last_refused_at=utcnow(),
            last_refused_why=why[:120],
        )
        .execution_options(synchronize_session=False)
    )
    db.session.commit()


def callback_url_warnings(till: Till) -> list[str]:
    """Why Safaricom could not reach this till's callback URL in production (empty if fine)."""
    if till.environment != "production":
        return []
    url = daraja_tills.callback_url(till)
    parts = urlsplit(url)
    warnings = []
    if parts.scheme != "https":
        warnings.append(
            gettext("The callback URL %(url)s is not HTTPS: Safaricom refuses it.", url=_shown(url))
        )
    host = parts.hostname or ""
    if _private_host(host):
        warnings.append(
            gettext(
                "The callback URL points at %(host)s, a loopback or private address that "
                "Safaricom cannot reach: set PESADESK_BASE_URL to this install's public address.",
                host=host,
            )
        )
    return warnings


def _shown(url: str) -> str:
    """A callback URL with its secret token hidden."""
    return url.rsplit("/", 1)[0] + "/…"


def _private_host(host: str) -> bool:
    if host in ("localhost", "") or host.endswith((".local", ".localhost", ".internal")):
        return True
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        addresses = _resolve(host)
    return any(a.is_private or a.is_loopback or a.is_link_local for a in addresses)


def _resolve(host: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        infos = socket.getaddrinfo(host, 443, proto=socket.IPPROTO_TCP)
    except OSError:
        return []  # no answer: nothing to warn about from here
    return [ipaddress.ip_address(info[4][0]) for info in infos]


# --- "Test connection" ------------------------------------------------------------------------


@dataclass(frozen=True)
class ConnectionCheck:
    """What "Test connection" found, in plain words."""

    ok: bool
    #: all_good, wrong_credentials, wrong_environment, no_network, unreadable, unexpected
    verdict: str
    message: str
    #: seconds the new token is valid for (all good only)
    lifetime_s: int | None = None
    #: how the shortcode and passkey fared (a query for a made-up checkout), if it got that far
    merchant: str | None = None


def check_connection(till: Till) -> ConnectionCheck:
    """Ask Daraja (or the simulator) for a token with the stored credentials, then whether
    the shortcode and passkey are right, and say what is wrong if anything is."""
    try:
        key, secret = decrypt(till.consumer_key_enc), decrypt(till.consumer_secret_enc)
    except SecretUnavailable as exc:
        return ConnectionCheck(
            False,
            "unreadable",
            gettext("The stored credentials cannot be read: %(error)s.", error=exc),
        )
    base = daraja_tills.daraja_base_url(till)
    store = DatabaseTokenStore(db.engine, till.id, fernet(), Path(current_app.instance_path))
    # A new token replaces the shared one (Daraja keeps one per app): every worker reads it
    # from the database, so nothing in flight is left with a dead token.
    client = _client(base, key, secret, store)
    started = time.time()
    try:
        client.get_token(force=True)
    except DarajaAuthError:
        elsewhere = _environment_that_accepts(till, key, secret)
        if elsewhere:
            return ConnectionCheck(
                False,
                "wrong_environment",
                gettext(
                    "Daraja %(environment)s refuses these keys, but %(other)s accepts them: "
                    "set the environment to %(other)s, or enter the %(environment)s keys.",
                    environment=till.environment,
                    other=elsewhere,
                ),
            )
        return ConnectionCheck(
            False,
            "wrong_credentials",
            gettext(
                "Daraja %(environment)s refuses this consumer key and secret. Copy them again "
                "from the app on the Daraja portal (sandbox and production keys differ).",
                environment=till.environment,
            ),
        )
    except (DarajaConnectionError, DarajaTimeout) as exc:
        return ConnectionCheck(
            False,
            "no_network",
            gettext(
                "No answer from %(host)s: check this server's network, proxy and DNS (%(error)s).",
                host=urlsplit(base).netloc,
                error=exc.message,
            ),
        )
    except DarajaError as exc:
        return ConnectionCheck(
            False,
            "unexpected",
            gettext("Daraja answered unexpectedly: %(error)s.", error=exc.message),
        )
    finally:
        client.close()
    token = store.get()
    lifetime = int(token.expires_at - started) if token else None
    merchant = _check_merchant(till)
    ok = merchant is None or merchant in (gettext(_MERCHANT_RIGHT), gettext(_MERCHANT_RIGHT_TEST))
    return ConnectionCheck(
        ok,
        "all_good" if ok else "wrong_merchant",
        (
            gettext(
                "Connected to Daraja %(environment)s: the consumer key and secret are right; "
                "a token lasts %(lifetime)s s.",
                environment=till.environment,
                lifetime=lifetime,
            )
            if ok
            else gettext(
                "The consumer key and secret are right, but see the shortcode and passkey."
            )
        ),
        lifetime_s=lifetime,
        merchant=merchant,
    )


def _client(base: str, key: str, secret: str, store) -> DarajaClient:  # noqa: ANN001
    cfg = current_app.config
    return DarajaClient(
        base,
        key,
        secret,
        connect_timeout=cfg["DARAJA_CONNECT_TIMEOUT"],
        read_timeout=min(cfg["DARAJA_READ_TIMEOUT"], 15.0),
        token_store=store,
    )


def _environment_that_accepts(till: Till, key: str, secret: str) -> str | None:
    """Another environment whose OAuth takes these keys (the classic mix-up), if any."""
    urls = daraja_tills.environment_urls()
    for env in ENVIRONMENTS:
        if env == till.environment or env not in urls:
            continue
        probe = _client(urls[env], key, secret, MemoryTokenStore())
        try:
            probe.get_token()
        except DarajaError:
            continue
        finally:
            probe.close()
        return env
    return None


_MERCHANT_RIGHT = N_("Shortcode and passkey are right.")
_MERCHANT_RIGHT_TEST = N_(
    "Shortcode and passkey are right (M-PESA only did not know the test checkout)."
)


def _check_merchant(till: Till) -> str | None:
    """Ask about a CheckoutRequestID that cannot exist: Daraja checks the shortcode and the
    password (passkey) before the id, so its answer says which is wrong. No prompt, no money."""
    try:
        daraja_tills.reset_clients()
        daraja_tills.client_for(till).stk_query(
            till.shortcode, daraja_tills.passkey(till), "ws_CO_CONNECTIONTEST0000000000"
        )
    except SecretUnavailable:
        return gettext("The passkey cannot be read.")
    except DarajaWrongCredentials:
        return gettext(
            "The passkey (or the shortcode it belongs to) is wrong: M-PESA says wrong credentials."
        )
    except DarajaMerchantNotFound:
        return gettext(
            "M-PESA does not know shortcode %(shortcode)s in %(environment)s.",
            shortcode=till.shortcode,
            environment=till.environment,
        )
    except DarajaBadRequest as exc:
        if exc.field == "CheckoutRequestID":
            return gettext(_MERCHANT_RIGHT_TEST)
        return gettext("M-PESA refused the check: %(error)s.", error=exc.message)
    except DarajaError as exc:
        return gettext(
            "The shortcode and passkey could not be checked: %(error)s.", error=exc.message
        )
    return gettext(_MERCHANT_RIGHT)


def record_check(till: Till, check: ConnectionCheck) -> None:
    audit.record(
        AuditAction.CONNECTION_TESTED,
        target=audit.target_of("till", till.id),
        detail={"verdict": check.verdict},
    )
    db.session.commit()


# --- The till a cashier works at --------------------------------------------------------------


def tills_for(user: User) -> list[Till]:
    """The active tills this user may work at: a cashier's assigned ones; owners and admins
    any active till."""
    query = select(Till).where(Till.archived_at.is_(None)).order_by(Till.id)
    if user.role == Role.CASHIER:
        query = query.where(Till.cashiers.any(User.id == user.id))
    return list(db.session.execute(query).scalars())


def current_till(user: User) -> Till | None | list[Till]:
    """The till the counter shows for this login: the one picked (or the only one), None when
    the user may work at no till, or the list to pick from."""
    choices = tills_for(user)
    picked = session.get(SESSION_TILL)
    for till in choices:
        if till.id == picked:
            return till
    if len(choices) == 1:
        return choices[0]
    return choices or None


def pick_till(user: User, till_id: int) -> Till | None:
    """Remember the till picked for this login, if the user may work there."""
    for till in tills_for(user):
        if till.id == till_id:
            session[SESSION_TILL] = till.id
            return till
    return None
