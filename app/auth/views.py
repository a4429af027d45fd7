"""Login, logout, the landing redirect by role, and each user's choice of language."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_login import current_user, login_required, login_user, logout_user
from sqlalchemy import select

from app.auth.forms import LoginForm
from app.auth.roles import role_required
from app.extensions import db
from app.i18n import LANGUAGES
from app.models import Role, User

bp = Blueprint("auth", __name__)


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


@bp.get("/")
def index():
    if not current_user.is_authenticated:
        return redirect(url_for("auth.login"))
    return redirect(home_for(current_user))


@bp.route("/login", methods=["GET", "POST"])
def login():
    form = LoginForm()
    if form.validate_on_submit():
        user = db.session.execute(
            select(User).where(User.username == form.username.data.strip())
        ).scalar_one_or_none()
        if user is not None and user.active and user.check_password(form.password.data):
            login_user(user)
            target = request.args.get("next", "")
            if not _same_site(target):
                target = home_for(user)
            return redirect(target)
        flash(gettext("Wrong username or password."), "error")
    return render_template("auth/login.html", form=form), 200 if not form.errors else 422


@bp.post("/logout")
@login_required
def logout():
    logout_user()
    flash(gettext("Logged out."), "info")
    return redirect(url_for("auth.login"))


@bp.post("/language")
@role_required(Role.CASHIER, Role.OWNER)  # every role: admins pass every check
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
