"""`role_required`: every view names the roles that may use it (admins pass every check)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import abort
from flask_babel import gettext
from flask_login import current_user, login_required

from app.extensions import db, login_manager
from app.i18n import N_
from app.models import Role, User

# Flask-Login flashes its "log in first" message through this, in the visitor's language.
login_manager.localize_callback = gettext
N_("Please log in.")  # the message set in create_app, for the catalogue


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    return db.session.get(User, int(user_id))


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
