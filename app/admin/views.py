"""Admin pages: till settings (secrets encrypted, never shown back) and users."""

from __future__ import annotations

from flask import (
    Blueprint,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext
from flask_login import current_user
from sqlalchemy import select

from app import audit
from app.admin.forms import EditUserForm, NewUserForm
from app.auth.roles import role_required
from app.extensions import db
from app.models import AuditAction, CallbackOutcome, Payment, RawCallback, Role, User
from app.reports.flags import LABELS as FLAG_LABELS
from app.reports.flags import flags_for

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.get("/")
@role_required(Role.ADMIN)
def index():
    return redirect(url_for("admin.tills"))


@bp.route("/users", methods=["GET", "POST"])
@role_required(Role.ADMIN)
def users():
    """Every user, with their role, access, lock and two-factor state; and a new one."""
    from sqlalchemy.exc import IntegrityError

    form = NewUserForm()
    if form.validate_on_submit():
        name = form.username.data.strip()
        user = User(username=name, role=form.role.data)
        user.set_password(form.password.data)
        db.session.add(user)
        try:
            db.session.flush()  # the unique username_key decides a race between two admins
        except IntegrityError:
            db.session.rollback()
            form.username.errors.append(gettext("That username is taken."))
        else:
            audit.record(
                AuditAction.USER_CREATED,
                target=audit.target_of("user", user.id),
                detail={"username": name, "role": user.role},
            )
            db.session.commit()
            flash(gettext("User %(user)s created.", user=name), "info")
            return redirect(url_for("admin.users"))
    return _users_page(form, status=422 if form.errors else 200)


@bp.post("/users/<int:user_id>")
@role_required(Role.ADMIN)
def edit_user(user_id: int):
    """Role, access and (optionally) a new password. Deactivating a user or resetting their
    password ends their sessions at once."""
    from app.auth import sessions

    person = db.get_or_404(User, user_id)
    form = EditUserForm(prefix=f"u{user_id}")
    form.for_username = person.username
    if not form.validate_on_submit():
        return _users_page(NewUserForm(formdata=None), edited=(user_id, form), status=422)
    if person.id == current_user.id and (form.role.data != Role.ADMIN or not form.active.data):
        flash(gettext("You cannot remove your own admin access."), "error")
        return redirect(url_for("admin.users"))
    target = audit.target_of("user", person.id)
    end_sessions = False
    if person.role != form.role.data:
        audit.record(
            AuditAction.USER_ROLE_CHANGED,
            target=target,
            detail={"username": person.username, "from": person.role, "to": form.role.data},
        )
        person.role = form.role.data
    active = bool(form.active.data)
    if person.active != active:
        action = AuditAction.USER_REACTIVATED if active else AuditAction.USER_DEACTIVATED
        audit.record(action, target=target, detail={"username": person.username})
        person.active = active
        end_sessions = end_sessions or not active
    if form.password.data:
        person.set_password(form.password.data)
        audit.record(
            AuditAction.PASSWORD_RESET, target=target, detail={"username": person.username}
        )
        end_sessions = True
    if end_sessions:
        sessions.end_other_sessions(person, keep_this=person.id == current_user.id)  # commits
    else:
        db.session.commit()
    flash(gettext("User %(user)s updated.", user=person.username), "info")
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
    outcome = inbox.process(raw)
    audit.record(
        AuditAction.CALLBACK_REPROCESSED,
        target=audit.target_of("callback", raw_id),
        detail={"outcome": str(outcome)},
    )
    db.session.commit()
    flash(gettext("Callback %(id)s reprocessed: %(outcome)s.", id=raw_id, outcome=outcome), "info")
    return redirect(url_for("admin.callback_detail", raw_id=raw_id))


# ---- users: the page, unlocking, two-factor sign-in -----------------------------------------
def _users_page(form: NewUserForm, *, edited: tuple[int, EditUserForm] | None = None, status=200):
    """The users page; `edited` is an edit form sent back with its errors beside its fields."""
    from app.admin.forms import TwoFactorPolicyForm
    from app.auth import throttle, twofactor

    people = db.session.execute(select(User).order_by(User.username_key)).scalars().all()
    edit_forms = {
        person.id: EditUserForm(formdata=None, obj=person, prefix=f"u{person.id}")
        for person in people
    }
    if edited is not None:
        edit_forms[edited[0]] = edited[1]
    required = twofactor.required_roles()
    policy = TwoFactorPolicyForm(
        formdata=None, owner=Role.OWNER in required, admin=Role.ADMIN in required
    )
    page = render_template(
        "admin/users.html",
        form=form,
        people=people,
        edit_forms=edit_forms,
        locked=throttle.locked_keys([person.username_key for person in people]),
        two_factor_roles=twofactor.ROLES,
        policy=policy,
    )
    return page, status


@bp.post("/users/<int:user_id>/unlock")
@role_required(Role.ADMIN)
def unlock_user(user_id: int):
    """Clear a user's failed sign-ins and the lock they caused."""
    from app.auth import throttle

    person = db.get_or_404(User, user_id)
    was_locked = throttle.unlock(person.username_key)
    audit.record(
        AuditAction.USER_UNLOCKED,
        target=audit.target_of("user", person.id),
        detail={"username": person.username, "was_locked": was_locked},
    )
    db.session.commit()
    flash(gettext("User %(user)s can sign in again.", user=person.username), "info")
    return redirect(url_for("admin.users"))


@bp.post("/users/<int:user_id>/two-factor/reset")
@role_required(Role.ADMIN)
def reset_two_factor(user_id: int):
    """Forget a user's two-factor secret and recovery codes (a lost phone); their sessions
    end, and they enrol again (at once, if their role requires it)."""
    from app.auth import sessions, twofactor

    person = db.get_or_404(User, user_id)
    twofactor.reset(person)
    audit.record(
        AuditAction.TWO_FACTOR_RESET,
        target=audit.target_of("user", person.id),
        detail={"username": person.username},
    )
    sessions.end_other_sessions(person, keep_this=person.id == current_user.id)  # commits
    flash(gettext("Two-factor sign-in of %(user)s was reset.", user=person.username), "info")
    return redirect(url_for("admin.users"))


@bp.post("/users/two-factor")
@role_required(Role.ADMIN)
def two_factor_policy():
    """Require two-factor sign-in of owners and/or admins: who has not enrolled must enrol
    before reaching any page."""
    from app.admin.forms import TwoFactorPolicyForm
    from app.auth import twofactor

    form = TwoFactorPolicyForm()
    if not form.validate_on_submit():
        flash("; ".join(str(e) for errs in form.errors.values() for e in errs), "error")
        return redirect(url_for("admin.users"))
    before = twofactor.required_roles()
    after = {role for role in twofactor.ROLES if getattr(form, role.value).data}
    if after != before:
        twofactor.set_required_roles(after)
        audit.record(
            AuditAction.TWO_FACTOR_REQUIRED,
            target="settings:two_factor_required_roles",
            detail={
                "from": [r.value for r in twofactor.ROLES if r in before],
                "to": [r.value for r in twofactor.ROLES if r in after],
            },
        )
        db.session.commit()
    flash(gettext("Two-factor requirement saved."), "info")
    return redirect(url_for("admin.users"))
