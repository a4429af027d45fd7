"""`role_required`: every view names the roles that may use it (admins pass every check)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import abort, flash, redirect, render_template, request
from flask_babel import gettext
from flask_login import current_user, login_required, login_url
from werkzeug.exceptions import Unauthorized

from app.extensions import db, login_manager
from app.htmx import is_htmx
from app.i18n import N_
from app.models import Role, User

# Flask-Login flashes its "log in first" message through this, in the visitor's language.
login_manager.localize_callback = gettext
N_("Please log in.")  # the message set in create_app, for the catalogue


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    return db.session.get(User, int(user_id))


@login_manager.unauthorized_handler
def _unauthorized():
    """Log in first. An htmx request gets a 401 with words the counter shows where the
    cashier typed (static/counter.js): following a redirect, htmx would otherwise swap the
    login page into the payment form and lose what was typed."""
    from app.payments.messages import SESSION_ENDED

    if is_htmx():
        return render_template("_error.html", error=Unauthorized(gettext(SESSION_ENDED))), 401
    flash(gettext(login_manager.login_message), login_manager.login_message_category)
    return redirect(login_url(login_manager.login_view, request.url))


def role_required(*roles: Role) -> Callable:
    """Log in first, then allow only users holding one of `roles` (or admin)."""

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        @login_required
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if not current_user.has_role(*roles):
                abort(403)
            return view(*args, **kwargs)

        wrapped.required_roles = roles  # read by the role-per-URL test
        return wrapped

    return decorator
