"""Login, logout, and the landing redirect by role."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user
from sqlalchemy import select

from app.auth.forms import LoginForm
from app.extensions import db
from app.models import Role, User

bp = Blueprint("auth", __name__)


def home_for(user: User) -> str:
    if user.role == Role.CASHIER:
        return url_for("cashier.index")
    if user.role == Role.OWNER:
        return url_for("owner.report")
    return url_for("admin.index")


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
            # Only same-site relative paths: never redirect a cashier off-site after login.
            if not target.startswith("/") or target.startswith("//"):
                target = home_for(user)
            return redirect(target)
        flash("Wrong username or password.", "error")
    return render_template("auth/login.html", form=form), 200 if not form.errors else 422


@bp.post("/logout")
@login_required
def logout():
    logout_user()
    flash("Logged out.", "info")
    return redirect(url_for("auth.login"))
