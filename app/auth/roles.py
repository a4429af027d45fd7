"""`role_required`: every view names the roles that may use it (admins pass every check)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext, ngettext
from flask_login import current_user, login_required, login_url
from werkzeug.exceptions import Unauthorized

from app.auth import sessions
from app.extensions import login_manager
from app.htmx import is_htmx
from app.i18n import N_
from app.models import Role, User

# Flask-Login flashes its "log in first" message through this, in the visitor's language.
login_manager.localize_callback = gettext
N_("Please log in.")  # the message set in create_app, for the catalogue
MUST_ENROL = N_("Your role requires two-factor sign-in: set it up to continue.")


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    return sessions.load(user_id)


def _why_ended() -> str | None:
    reason = getattr(g, "session_ended", None)
    if reason == "idle":
        minutes = getattr(g, "session_ended_minutes", 0)
        return ngettext(
            "You were logged out after %(num)d minute without activity. Please log in again.",
            "You were logged out after %(num)d minutes without activity. Please log in again.",
            minutes,
        )
    if reason == "shift":
        return gettext("Your shift's session has ended. Please log in again.")
    if reason == "version":
        return gettext("Your session has ended. Please log in again.")
    return None


@login_manager.unauthorized_handler
def _unauthorized():
    """Log in first. An htmx request gets a 401 with words the counter shows where the
    cashier typed (static/counter.js): following a redirect, htmx would otherwise swap the
    login page into the payment form and lose what was typed."""
    from app.payments.messages import SESSION_ENDED

    if is_htmx():
        return render_template("_error.html", error=Unauthorized(gettext(SESSION_ENDED))), 401
    flash(
        _why_ended() or gettext(login_manager.login_message), login_manager.login_message_category
    )
    return redirect(login_url(login_manager.login_view, request.url))


def _enrol_first():
    """A user whose role requires two-factor sign-in reaches no page before enrolling."""
    target = url_for("auth.two_factor")
    if is_htmx():
        return "", 204, {"HX-Redirect": target}
    flash(gettext(MUST_ENROL), "error")
    return redirect(target)


def role_required(*roles: Role, before_enrolment: bool = False) -> Callable:
    """Log in first, then allow only users holding one of `roles` (or admin). Unless
    `before_enrolment`, a user who must enrol in two-factor sign-in is sent to do so."""

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        @login_required
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if not current_user.has_role(*roles):
                abort(403)
            if not before_enrolment:
                from app.auth import twofactor

                if twofactor.must_enrol(current_user):
                    return _enrol_first()
            return view(*args, **kwargs)

        wrapped.required_roles = roles  # read by the role-per-URL test
        return wrapped

    return decorator
