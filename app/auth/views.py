"""Signing in (password, then a two-factor code if enrolled) and out, the landing redirect by
role, each user's language, "change my password" and two-factor enrolment."""

from __future__ import annotations

import math
import time
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext, ngettext
from flask_login import current_user, login_required, logout_user

from app import audit
from app.auth import sessions, throttle, twofactor
from app.auth.forms import ChangePasswordForm, CodeForm, EnrolForm, LoginForm
from app.auth.passwords import check_without_user, find_user
from app.auth.roles import MUST_ENROL, role_required
from app.extensions import db
from app.i18n import LANGUAGES, N_
from app.models import AuditAction, Role, User
from app.models.user import username_key

bp = Blueprint("auth", __name__)

WRONG = N_("Wrong username or password.")
LOCKED = N_(
    "This account is locked after too many failed sign-ins. An admin can unlock it on the "
    "Users page."
)
WRONG_CODE = N_("That code is not right.")
#: how long the two-factor step waits for its code after the password was right
CODE_STEP_SECONDS = 300
_PENDING = "_two_factor"


@bp.record_once
def _warn_about_demo_users(state) -> None:  # noqa: ANN001 - Flask's BlueprintSetupState
    """At start-up (create_app registers this blueprint once): outside demo mode, say in the
    log if demo users exist, since they cannot sign in."""
    if not state.app.config.get("DEMO"):
        from app.demo import warn_about_demo_users

        warn_about_demo_users(state.app)


def home_for(user: User) -> str:
    if user.role == Role.CASHIER:
        return url_for("cashier.index")
    if user.role == Role.OWNER:
        return url_for("owner.report")
    return url_for("admin.index")


def _same_site(target: str | None) -> bool:
    """Only same-site relative paths: never redirect a user off-site.

    Browsers drop tabs and newlines from URLs, so "/\t/evil.example" would become
    "//evil.example": refuse control characters and whitespace, then require no scheme and
    no host once parsed."""
    if not target or not target.startswith("/") or "\\" in target:
        return False
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in target):
        return False
    parts = urlsplit(target)
    return not parts.scheme and not parts.netloc and not target.startswith("//")


def _wait_message(seconds: int) -> str:
    if seconds >= 120:
        minutes = math.ceil(seconds / 60)
        return ngettext(
            "Too many failed sign-ins. Try again in %(num)d minute.",
            "Too many failed sign-ins. Try again in %(num)d minutes.",
            minutes,
        )
    return ngettext(
        "Too many failed sign-ins. Try again in %(num)d second.",
        "Too many failed sign-ins. Try again in %(num)d seconds.",
        seconds,
    )


def _after_failure(attempt: throttle.Attempt, first: str) -> str:
    """`first` (what was wrong), then what the count now means for the next attempt."""
    if attempt.locked:
        return f"{first} {gettext(LOCKED)}"
    if attempt.wait:
        return f"{first} {_wait_message(attempt.wait)}"
    return first


def _refusal(attempt: throttle.Attempt) -> str:
    return gettext(LOCKED) if attempt.locked else _wait_message(attempt.wait)


def _record_failure(attempt: throttle.Attempt, typed: str, user: User | None, reason: str) -> None:
    """Audit a failed attempt (and the lock it caused) and commit."""
    target = audit.target_of("user", user.id) if user is not None else None
    detail = {"username": typed[:64], "reason": reason, "failures": attempt.user.failures}
    audit.record(AuditAction.SIGN_IN_FAILED, target=target, detail=detail)
    if attempt.user.just_locked:
        audit.record(
            AuditAction.SIGN_IN_LOCKED,
            target=target,
            detail={"username": typed[:64], "failures": attempt.user.failures},
        )
    db.session.commit()


def _signed_in(attempt: throttle.Attempt, user: User, method: str | None):
    throttle.give_back(attempt, reset_account=True)
    audit.record(
        AuditAction.SIGN_IN,
        target=audit.target_of("user", user.id),
        actor=user,
        detail={"two_factor": method} if method else None,
    )
    db.session.commit()
    sessions.start(user)


def _too_many(attempt: throttle.Attempt) -> dict[str, str]:
    return {"Retry-After": str(max(1, attempt.wait))}


@bp.get("/")
def index():
    if not current_user.is_authenticated:
        return redirect(url_for("auth.login"))
    return redirect(home_for(current_user))


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Every attempt is counted before it is judged (app/auth/throttle.py) and audited. A
    name nobody has, a wrong password, a disabled user and a demo user outside demo mode all
    get the same answer after the same work (a password hash is checked in every case)."""
    form = LoginForm()
    error, status, headers = None, 200, {}
    if form.validate_on_submit():
        typed = form.username.data.strip()
        attempt = throttle.begin(username_key(typed))
        user = find_user(typed)
        if attempt.refused:
            _record_failure(attempt, typed, user, attempt.refused)
            error, status, headers = _refusal(attempt), 429, _too_many(attempt)
        else:
            password = form.password.data
            right = user.check_password(password) if user else check_without_user(password)
            reason = None
            if user is None:
                reason = "unknown_user"
            elif not right:
                reason = "wrong_password"
            elif not user.active:
                reason = "inactive"
            elif user.is_demo and not current_app.config["DEMO"]:
                reason = "demo_user_outside_demo"
            if reason:
                _record_failure(attempt, typed, user, reason)
                error = _after_failure(attempt, gettext(WRONG))
            else:
                target = request.args.get("next", "")
                if not _same_site(target):
                    target = home_for(user)
                if user.two_factor_enabled:
                    throttle.give_back(attempt, reset_account=False)
                    db.session.commit()
                    session[_PENDING] = {
                        "user": user.id,
                        "version": user.session_version,
                        "at": int(time.time()),
                        "next": target,
                    }
                    return redirect(url_for("auth.login_code"))
                _signed_in(attempt, user, None)
                if twofactor.must_enrol(user):
                    flash(gettext(MUST_ENROL), "info")
                    return redirect(url_for("auth.two_factor"))
                return redirect(target)
    elif form.errors:
        status = 422
    return render_template("auth/login.html", form=form, error=error), status, headers


def _pending_user() -> tuple[User | None, dict]:
    pending = session.get(_PENDING)
    if not isinstance(pending, dict):
        return None, {}
    at = pending.get("at")
    if not isinstance(at, int) or time.time() - at > CODE_STEP_SECONDS:
        return None, {}
    user_id = pending.get("user")
    user = db.session.get(User, user_id) if isinstance(user_id, int) else None
    if (
        user is None
        or not user.active
        or not user.two_factor_enabled
        or user.session_version != pending.get("version")
    ):
        return None, {}
    return user, pending


@bp.route("/login/code", methods=["GET", "POST"])
def login_code():
    """The second step: a code from the authenticator app, or one of the recovery codes."""
    user, pending = _pending_user()
    if user is None:
        session.pop(_PENDING, None)
        flash(gettext("Enter your username and password first."), "info")
        return redirect(url_for("auth.login"))
    form = CodeForm()
    error, status, headers = None, 200, {}
    if form.validate_on_submit():
        attempt = throttle.begin(user.username_key)
        code = form.code.data
        if attempt.refused:
            _record_failure(attempt, user.username, user, attempt.refused)
            error, status, headers = _refusal(attempt), 429, _too_many(attempt)
        else:
            if twofactor.looks_like_recovery_code(code):
                method = "recovery_code"
                right = twofactor.use_recovery_code(user, code)
            else:
                method = "totp"
                right = twofactor.verify_code(user, code)
            if right:
                _signed_in(attempt, user, method)
                target = pending.get("next")
                return redirect(target if _same_site(target) else home_for(user))
            _record_failure(attempt, user.username, user, f"wrong_{method}")
            error, status = _after_failure(attempt, gettext(WRONG_CODE)), 422
    elif form.errors:
        status = 422
    return render_template("auth/code.html", form=form, error=error), status, headers


@bp.post("/logout")
@login_required
def logout():
    """Logging out ends every session of this user, on every device."""
    user = current_user._get_current_object()
    audit.record(AuditAction.SIGNED_OUT, target=audit.target_of("user", user.id), actor=user)
    sessions.end_other_sessions(user)  # commits the audit entry with it
    logout_user()
    flash(gettext("Logged out."), "info")
    return redirect(url_for("auth.login"))


@bp.post("/language")
@role_required(Role.CASHIER, Role.OWNER, before_enrolment=True)  # every role
def set_language():
    """Store the user's language (English or Kiswahili) and go back to the page they were on."""
    code = request.form.get("language", "")
    if code not in LANGUAGES:
        abort(400, gettext("Choose English or Kiswahili."))
    current_user.language = code
    db.session.commit()
    target = request.form.get("next", "")
    # Flask's full_path ends in "?" when there is no query string.
    target = target.rstrip("?")
    return redirect(target if _same_site(target) else home_for(current_user))


@bp.route("/account/password", methods=["GET", "POST"])
@role_required(Role.CASHIER, Role.OWNER)  # every role
def change_password():
    """Any signed-in user changes their own password; their other sessions end."""
    user = current_user._get_current_object()
    form = ChangePasswordForm()
    form.for_username = user.username
    status, headers = 200, {}
    if form.validate_on_submit():
        # The current password is a guess like any other: counted, and refused when throttled.
        attempt = throttle.begin(user.username_key)
        if attempt.refused:
            form.current_password.errors.append(_refusal(attempt))
            status, headers = 429, _too_many(attempt)
        elif not user.check_password(form.current_password.data):
            first = gettext("That is not your current password.")
            form.current_password.errors.append(_after_failure(attempt, first))
            status = 422
        else:
            throttle.give_back(attempt, reset_account=False)
            user.set_password(form.new_password.data)
            audit.record(
                AuditAction.PASSWORD_CHANGED, target=audit.target_of("user", user.id), actor=user
            )
            sessions.end_other_sessions(user, keep_this=True)  # commits
            flash(gettext("Password changed. Your other sessions were logged out."), "info")
            return redirect(home_for(user))
    elif form.errors:
        status = 422
    response = render_template("auth/password.html", form=form)
    return response, status, headers


@bp.route("/account/two-factor", methods=["GET", "POST"])
@role_required(Role.OWNER, before_enrolment=True)  # owners and admins
def two_factor():
    """Enrol in two-factor sign-in: scan the QR code (or type the secret), confirm a code,
    and get ten recovery codes, shown once."""
    user = current_user._get_current_object()
    no_store = {"Cache-Control": "no-store"}
    if user.two_factor_enabled:
        left = twofactor.recovery_codes_left(user)
        return render_template("auth/two_factor.html", enabled=True, left=left), 200, no_store
    secret = twofactor.pending_secret(user)
    db.session.commit()
    form = EnrolForm()
    status = 200
    if form.validate_on_submit():
        codes = twofactor.confirm(user, form.code.data)
        if codes:
            audit.record(
                AuditAction.TWO_FACTOR_ENROLLED, target=audit.target_of("user", user.id), actor=user
            )
            db.session.commit()
            return render_template("auth/recovery_codes.html", codes=codes), 200, no_store
        form.code.errors.append(
            gettext(
                "That code is not right. Check that the phone's clock is right and type the "
                "newest code."
            )
        )
        status = 422
    elif form.errors:
        status = 422
    uri = twofactor.provisioning_uri(user, secret)
    page = render_template(
        "auth/two_factor.html",
        enabled=False,
        form=form,
        qr=twofactor.qr_svg(uri, gettext("QR code for your authenticator app")),
        secret=twofactor.grouped(secret),
        required=user.role in twofactor.required_roles(),
    )
    return page, status, no_store
