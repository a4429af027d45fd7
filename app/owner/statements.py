"""Statement pages: upload the till's M-PESA statement, see what matches, decide the rest."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_login import current_user
from sqlalchemy import select
from werkzeug.exceptions import RequestEntityTooLarge

from app import audit, statements
from app.auth.roles import role_required
from app.extensions import db
from app.models import AuditAction, Payment, RawCallback, Role, Till
from app.models.statement import StatementEntry
from app.owner.views import bp
from app.payments import service
from app.reconcile.statement import MAX_BYTES, TOO_BIG, StatementError
from app.reports import listing
from app.reports.periods import PRESET_LABELS, choose_period
from app.timeutil import today_nairobi


def _till() -> Till | None:
    # From the query string only: reading the form of an oversized upload raises again.
    till_id = listing.parse_id(request.args.get("till"))
    query = select(Till).order_by(Till.id)
    if till_id is not None:
        query = query.where(Till.id == till_id)
    return db.session.execute(query.limit(1)).scalar_one_or_none()


def _page(till: Till, *, error: str | None = None, status: int = 200):
    choice = choose_period(request.args, today_nairobi())
    f = listing.read_filters(request.args, choice.period)
    result = statements.reconcile_till(till, choice.period)
    return (
        render_template(
            "owner/statements.html",
            till=till,
            tills=db.session.execute(select(Till).order_by(Till.name)).scalars().all(),
            choice=choice,
            filters=f,
            presets=PRESET_LABELS,
            r=result,
            error=error,
            max_mb=MAX_BYTES // 1024 // 1024,
        ),
        status,
    )


@bp.get("/statements")
@role_required(Role.OWNER)
def statement_page():
    """One till's reconciliation over a period: alarms first, then what to decide."""
    till = _till()
    if till is None:
        flash(gettext("There is no such till or shop."), "error")
        return redirect(url_for("owner.takings_page"))
    return _page(till)


@bp.post("/statements")
@role_required(Role.OWNER)
def upload_statement():
    """Store a statement for the till; a broken one is refused whole, naming the line."""
    till = _till()
    if till is None:
        flash(gettext("There is no such till or shop."), "error")
        return redirect(url_for("owner.takings_page"))
    upload = request.files.get("statement")
    if upload is None or not upload.filename:
        return _page(till, error=gettext("Choose the statement file to upload."), status=422)
    try:
        outcome = statements.upload(till, upload.read(), upload.filename, current_user)
    except StatementError as exc:
        db.session.rollback()
        return _page(till, error=gettext(exc.msgid, **exc.params), status=422)
    if outcome.already:
        flash(gettext("This statement was uploaded before: nothing changed."), "info")
    else:
        audit.record(
            AuditAction.STATEMENT_UPLOADED,
            target=audit.target_of("till", till.id),
            detail={
                "file": upload.filename[:200],
                "lines": outcome.upload.line_count if outcome.upload else 0,
                "new_lines": outcome.new_lines,
                "receipts_filled": outcome.receipts_filled,
            },
        )
        db.session.commit()
        flash(
            gettext(
                "Statement stored: %(new)s new lines, %(filled)s receipts filled in.",
                new=outcome.new_lines,
                filled=outcome.receipts_filled,
            ),
            "info",
        )
    return redirect(url_for("owner.statement_page", **{**request.args.to_dict(), "till": till.id}))


@bp.errorhandler(RequestEntityTooLarge)
def _too_big(exc: RequestEntityTooLarge):
    """A statement over the limit (the body limit is raised for its upload alone,
    app/web_input.py): say so on the statement page, with the file's size."""
    till = _till() if request.endpoint == "owner.upload_statement" else None
    if till is None:
        return render_template("error.html", error=exc), 413
    size = (request.content_length or 0) / 1024 / 1024
    message = gettext(TOO_BIG, size=f"{size:.1f}", limit=MAX_BYTES // 1024 // 1024)
    return _page(till, error=message, status=413)


def _entry(entry_id: int) -> StatementEntry:
    return db.get_or_404(StatementEntry, entry_id)


def _back(entry: StatementEntry):
    args = {**request.args.to_dict(), "till": entry.till_id}
    return redirect(url_for("owner.statement_page", **args))


@bp.post("/statements/lines/<int:entry_id>/attach")
@role_required(Role.OWNER)
def attach_statement_line(entry_id: int):
    """Money on the statement is the sale whose outcome we never learned: it becomes paid."""
    entry = _entry(entry_id)
    payment_id = listing.parse_id(request.form.get("payment_id"))
    payment = db.session.get(Payment, payment_id) if payment_id is not None else None
    if payment is None or payment.till_id != entry.till_id:
        flash(gettext("Type the number of the sale (its payment id) to link."), "error")
        return _back(entry)
    try:
        service.paid_by_statement(
            payment,
            current_user,
            receipt=entry.receipt,
            amount_cents=entry.paid_in_cents,
            note=f"line {entry.line} of statement #{entry.upload_id}",
        )
    except service.ResolveError as exc:
        flash(gettext(exc.msgid, **exc.params), "error")
        return _back(entry)
    audit.record(
        AuditAction.STATEMENT_ATTACHED,
        target=audit.target_of("payment", payment.id),
        detail={"receipt": entry.receipt, "statement_line": entry.id},
    )
    db.session.commit()
    flash(gettext("Linked: payment %(id)s is now paid.", id=payment.id), "info")
    return _back(entry)


@bp.post("/statements/lines/<int:entry_id>/orphan/<int:raw_id>")
@role_required(Role.OWNER)
def statement_confirms_orphan(entry_id: int, raw_id: int):
    """The statement confirms an orphan callback's money: keep it as a sale of its own."""
    entry = _entry(entry_id)
    raw = db.get_or_404(RawCallback, raw_id)
    if (raw.receipt_number or "").upper() != entry.receipt or raw.till_id != entry.till_id:
        flash(gettext("That callback is not for this line's receipt."), "error")
        return _back(entry)
    try:
        payment = service.accept_orphan(
            raw, current_user, note=f"on the statement, line {entry.line}"
        )
    except service.ResolveError as exc:
        flash(gettext(exc.msgid, **exc.params), "error")
        return _back(entry)
    audit.record(
        AuditAction.ORPHAN_ACCEPTED,
        target=audit.target_of("payment", payment.id),
        detail={"callback": raw.id, "receipt": entry.receipt, "statement_line": entry.id},
    )
    db.session.commit()
    flash(gettext("Accepted as sale %(id)s.", id=payment.id), "info")
    return _back(entry)


@bp.post("/statements/lines/<int:entry_id>/outside")
@role_required(Role.OWNER)
def statement_paid_outside(entry_id: int):
    """The owner knows this money: paid straight to the till, outside PesaDesk."""
    entry = _entry(entry_id)
    statements.mark_outside(entry, current_user)
    audit.record(
        AuditAction.STATEMENT_OUTSIDE,
        target=audit.target_of("statement_line", entry.id),
        detail={"receipt": entry.receipt, "amount_cents": entry.paid_in_cents},
    )
    db.session.commit()
    flash(gettext("Marked as paid outside PesaDesk."), "info")
    return _back(entry)
