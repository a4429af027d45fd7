"""Admin pages: till settings (secrets encrypted, never shown back) and users."""

from __future__ import annotations

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from sqlalchemy import select

from app.admin.forms import EditUserForm, NewUserForm, TillForm
from app.auth.roles import role_required
from app.crypto import encrypt, hint
from app.extensions import db
from app.models import CallbackOutcome, Payment, RawCallback, Role, Till, User
from app.payments import tills
from app.payments.token_store import forget_tokens
from app.reports.flags import LABELS as FLAG_LABELS
from app.reports.flags import flags_for

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.get("/")
@role_required(Role.ADMIN)
def index():
    return redirect(url_for("admin.till"))


@bp.route("/till", methods=["GET", "POST"])
@role_required(Role.ADMIN)
def till():
    till = db.session.execute(select(Till).order_by(Till.id).limit(1)).scalar_one_or_none()
    form = TillForm(obj=till) if till else TillForm()
    if form.validate_on_submit():
        if form.environment.data == "simulator" and not current_app.config["SIMULATOR_ENABLED"]:
            form.environment.errors.append("The simulator is not enabled on this install.")
        else:
            till = till or Till()
            till.name = form.name.data.strip()
            till.till_type = form.till_type.data
            till.shortcode = form.shortcode.data
            till.till_number = form.till_number.data or None
            till.environment = form.environment.data
            till.query_budget_per_s = float(form.query_budget_per_s.data)
            till.allow_ported_numbers = bool(form.allow_ported_numbers.data)
            for field in ("consumer_key", "consumer_secret", "passkey"):
                value = (getattr(form, field).data or "").strip()
                if value:
                    setattr(till, f"{field}_enc", encrypt(value))
                    setattr(till, f"{field}_hint", hint(value))
            missing = [
                f
                for f in ("consumer_key", "consumer_secret", "passkey")
                if not getattr(till, f"{f}_enc")
            ]
            if missing:
                form.passkey.errors.append(
                    "Enter " + ", ".join(m.replace("_", " ") for m in missing) + "."
                )
            else:
                db.session.add(till)
                db.session.commit()
                # New credentials: the old token belongs to another app (or none).
                forget_tokens(db.engine, till.id)
                tills.reset_clients()
                flash("Till saved.", "info")
                return redirect(url_for("admin.till"))
    callback = tills.callback_url(till) if till and till.id else None
    return render_template("admin/till.html", form=form, till=till, callback_url=callback)


@bp.route("/users", methods=["GET", "POST"])
@role_required(Role.ADMIN)
def users():
    form = NewUserForm()
    if form.validate_on_submit():
        name = form.username.data.strip()
        if db.session.execute(select(User.id).where(User.username == name)).first():
            form.username.errors.append("That username is taken.")
        else:
            user = User(username=name, role=form.role.data)
            user.set_password(form.password.data)
            db.session.add(user)
            db.session.commit()
            flash(f"User {name} created.", "info")
            return redirect(url_for("admin.users"))
    people = db.session.execute(select(User).order_by(User.username)).scalars().all()
    edit_forms = {}
    for person in people:
        edit = EditUserForm(formdata=None, obj=person, prefix=f"u{person.id}")
        edit_forms[person.id] = edit
    return render_template("admin/users.html", form=form, people=people, edit_forms=edit_forms)


@bp.post("/users/<int:user_id>")
@role_required(Role.ADMIN)
def edit_user(user_id: int):
    person = db.get_or_404(User, user_id)
    form = EditUserForm(prefix=f"u{user_id}")
    if form.validate_on_submit():
        if person.id == current_user.id and (form.role.data != Role.ADMIN or not form.active.data):
            flash("You cannot remove your own admin access.", "error")
        else:
            person.role = form.role.data
            person.active = form.active.data
            if form.password.data:
                person.set_password(form.password.data)
            db.session.commit()
            flash(f"User {person.username} updated.", "info")
    else:
        flash("; ".join(e for errs in form.errors.values() for e in errs), "error")
    return redirect(url_for("admin.users"))


@bp.get("/callbacks")
@role_required(Role.ADMIN)
def callbacks():
    """Every POST that reached a callback URL, newest first, filterable by outcome or text."""
    outcome = request.args.get("outcome", "")
    q = (request.args.get("q") or "").strip()[:64]
    query = select(RawCallback).order_by(RawCallback.id.desc()).limit(200)
    if outcome in set(CallbackOutcome):
        query = query.where(RawCallback.outcome == outcome)
    if q:
        like = f"%{q}%"
        query = query.where(
            RawCallback.checkout_request_id.ilike(like)
            | RawCallback.receipt_number.ilike(like)
            | RawCallback.phone.ilike(like)
        )
    rows = db.session.execute(query).scalars().all()
    payments = db.session.execute(
        select(Payment).where(Payment.id.in_({r.payment_id for r in rows if r.payment_id}))
    ).scalars()
    return render_template(
        "admin/callbacks.html",
        rows=rows,
        outcome=outcome,
        q=q,
        outcomes=list(CallbackOutcome),
        flags=flags_for(payments),
        flag_labels=FLAG_LABELS,
    )


@bp.get("/callbacks/<int:raw_id>")
@role_required(Role.ADMIN)
def callback_detail(raw_id: int):
    raw = db.get_or_404(RawCallback, raw_id)
    return render_template("admin/callback.html", raw=raw, body=raw.body.decode("utf-8", "replace"))


@bp.post("/callbacks/<int:raw_id>/reprocess")
@role_required(Role.ADMIN)
def callback_reprocess(raw_id: int):
    """Apply a stored callback again; safe, because applying is idempotent."""
    from app.callbacks import inbox

    raw = db.get_or_404(RawCallback, raw_id)
    flash(f"Callback {raw_id} reprocessed: {inbox.process(raw)}.", "info")
    return redirect(url_for("admin.callback_detail", raw_id=raw_id))
