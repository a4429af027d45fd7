"""The owner's back office: takings over any period, every payment findable, CSV exports."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

from flask import Response, flash, redirect, render_template, request, stream_with_context, url_for
from flask_babel import format_date, gettext
from flask_login import current_user
from sqlalchemy import select

from app import audit, statements
from app.auth.roles import role_required
from app.extensions import db
from app.filters import kes as kes_text
from app.i18n import N_
from app.models import AuditAction, Payment, RawCallback, Role, Shop, Till, User
from app.owner.views import bp
from app.payments import service
from app.payments.messages import LABELS as STATUS_LABELS
from app.payments.messages import reason_label
from app.payments.states import Status
from app.reports import charts, close, listing, orphans, takings
from app.reports.flags import LABELS as FLAG_LABELS
from app.reports.flags import Flag
from app.reports.periods import MAX_CHART_DAYS, PRESET_LABELS, Choice, Period, choose_period
from app.timeutil import EARLIEST_DAY, today_nairobi

OPEN_LABEL = N_("Not final yet")


def _choice() -> Choice:
    return choose_period(request.args, today_nairobi())


def _error(choice: Choice) -> str | None:
    if choice.error is None:
        return None
    msgid, params = choice.error
    return gettext(msgid, **params)


def _scope_choices() -> dict[str, list]:
    """Everything the shop/till/cashier pickers offer (a few rows: shops are not many)."""
    return {
        "shops": db.session.execute(select(Shop).order_by(Shop.name)).scalars().all(),
        "tills": db.session.execute(select(Till).order_by(Till.name)).scalars().all(),
        "cashiers": db.session.execute(
            select(User).where(User.role == Role.CASHIER).order_by(User.username)
        )
        .scalars()
        .all(),
    }


def _change(now: int, before: int) -> float | None:
    """The relative change from the previous period, or None when there is nothing to compare."""
    return (now - before) / before if before else None


def _charts(view: takings.Overview, period: Period) -> tuple[list[charts.Chart], str | None]:
    """The takings page's charts, each with its table; a note instead when the range is long."""
    if period.days > MAX_CHART_DAYS:
        note = gettext(
            "Charts cover at most %(days)s days; the totals cover the whole range.",
            days=MAX_CHART_DAYS,
        )
        return [], note
    empty = gettext("No paid sales in this period.")
    if period.single_day:
        over_time = charts.column_chart(
            [(f"{h:02d}", kes) for h, _n, kes in view.over_time],
            title=gettext("Takings per hour"),
            desc=gettext("KES paid in each hour of the day (Nairobi time)."),
            value_label=kes_text,
            chart_id="per-hour",
            headings=(gettext("Hour"), gettext("KES")),
            empty_text=empty,
        )
    else:
        over_time = charts.column_chart(
            [(format_date(d, "d MMM"), kes) for d, _n, kes in view.over_time],
            title=gettext("Takings per day"),
            desc=gettext("KES paid on each Nairobi day of the period."),
            value_label=kes_text,
            chart_id="per-day",
            headings=(gettext("Day"), gettext("KES")),
            empty_text=empty,
        )
    per_till = charts.bar_chart(
        [(name or "?", kes) for name, _n, kes in view.by_till],
        title=gettext("Takings per till"),
        desc=gettext("KES paid at each till in the period."),
        value_label=kes_text,
        chart_id="per-till",
        headings=(gettext("Till"), gettext("KES")),
        empty_text=empty,
    )
    per_cashier = charts.bar_chart(
        [(name or gettext("No cashier"), kes) for name, _n, kes in view.by_cashier],
        title=gettext("Takings per cashier"),
        desc=gettext("KES paid for the sales of each cashier in the period."),
        value_label=kes_text,
        chart_id="per-cashier",
        headings=(gettext("Cashier"), gettext("KES")),
        empty_text=empty,
    )
    # Several ResultCodes share one short reason: count them under it.
    reasons: dict[str, int] = {}
    for code, count in view.failures:
        label = gettext(reason_label(code))
        reasons[label] = reasons.get(label, 0) + count
    failures = charts.share_chart(
        sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])),
        title=gettext("Why sales failed"),
        desc=gettext("The share of each failure reason among the sales that failed."),
        value_label=str,
        chart_id="failure-reasons",
        headings=(gettext("Reason"), gettext("Share (sales)")),
        empty_text=gettext("No failed sales in this period."),
    )
    return [over_time, per_till, per_cashier, failures], None


@bp.get("/takings")
@role_required(Role.OWNER)
def takings_page():
    """Takings at a glance: totals, the previous period, and charts with their tables."""
    choice = _choice()
    f = listing.read_filters(request.args, choice.period)
    period, scope = choice.period, f.scope
    view = takings.overview(period, scope, max_days=MAX_CHART_DAYS)
    now = view.summary
    before = takings.summary(period.previous(), scope)
    drawn, charts_error = _charts(view, period)
    return render_template(
        "owner/takings.html",
        choice=choice,
        period=period,
        previous=period.previous(),
        filters=f,
        error=_error(choice),
        presets=PRESET_LABELS,
        now=now,
        before=before,
        change=_change,
        charts=drawn,
        charts_error=charts_error,
        **_scope_choices(),
    )


@bp.get("/payments")
@role_required(Role.OWNER)
def payments():
    """Every payment of a period, filtered, newest first, a keyset page at a time."""
    choice = _choice()
    f = listing.read_filters(request.args, choice.period)
    result = listing.page(f, request.args.get("after"))
    return render_template(
        "owner/payments.html",
        choice=choice,
        filters=f,
        error=_error(choice),
        presets=PRESET_LABELS,
        page=result,
        first_page=not request.args.get("after"),
        statuses=[(listing.OPEN_STATUSES, OPEN_LABEL)]
        + [(s.value, STATUS_LABELS[s]) for s in Status],
        flag_choices=[(fl.value, FLAG_LABELS[fl]) for fl in Flag],
        flag_labels=FLAG_LABELS,
        **_scope_choices(),
    )


def _csv(rows: Iterator[str], name: str, period: Period) -> Response:
    filename = f"pesadesk-{name}-{period.start.isoformat()}-to-{period.end.isoformat()}.csv"
    response = Response(stream_with_context(rows), mimetype="text/csv; charset=utf-8")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@bp.get("/payments.csv")
@role_required(Role.OWNER)
def payments_csv():
    """The filtered list as CSV (UTF-8 with BOM, Nairobi times, whole shillings), streamed."""
    choice = _choice()
    f = listing.read_filters(request.args, choice.period)
    return _csv(listing.export_rows(f), "payments", choice.period)


@bp.get("/takings.csv")
@role_required(Role.OWNER)
def takings_csv():
    """A line per Nairobi day, for the accountant."""
    choice = _choice()
    f = listing.read_filters(request.args, choice.period)
    return _csv(listing.day_summary_rows(f), "takings-by-day", choice.period)


@bp.get("/orphans")
@role_required(Role.OWNER)
def orphan_money():
    """Money received by successful callbacks that matched no sale."""
    choice = _choice()
    f = listing.read_filters(request.args, choice.period)
    rows = orphans.received_not_linked(choice.period, f.scope)
    return render_template(
        "owner/orphans.html",
        choice=choice,
        filters=f,
        error=_error(choice),
        presets=PRESET_LABELS,
        rows=rows,
        total_kes=sum(r.amount or 0 for r in rows),
        **_scope_choices(),
    )


def _orphan_redirect():
    return redirect(url_for("owner.orphan_money", **request.args.to_dict()))


@bp.post("/orphans/<int:raw_id>/link")
@role_required(Role.ADMIN)
def link_orphan(raw_id: int):
    """An admin ties orphan money to the sale whose push answer was lost."""
    raw = db.get_or_404(RawCallback, raw_id)
    sale_id = listing.parse_id(request.form.get("payment_id"))
    payment = db.session.get(Payment, sale_id) if sale_id is not None else None
    if payment is None:
        flash(gettext("Type the number of the sale (its payment id) to link."), "error")
        return _orphan_redirect()
    try:
        service.link_orphan(raw, payment, current_user, note=request.form.get("note", "")[:400])
    except service.ResolveError as exc:
        flash(gettext(exc.msgid, **exc.params), "error")
        return _orphan_redirect()
    audit.record(
        AuditAction.ORPHAN_LINKED,
        target=audit.target_of("payment", payment.id),
        detail={"callback": raw.id, "receipt": raw.receipt_number, "amount": raw.amount},
    )
    db.session.commit()
    flash(gettext("Linked: payment %(id)s is now paid.", id=payment.id), "info")
    return _orphan_redirect()


@bp.post("/orphans/<int:raw_id>/accept")
@role_required(Role.ADMIN)
def accept_orphan(raw_id: int):
    """An admin keeps orphan money as a sale of its own."""
    raw = db.get_or_404(RawCallback, raw_id)
    try:
        payment = service.accept_orphan(raw, current_user, note=request.form.get("note", "")[:400])
    except service.ResolveError as exc:
        flash(gettext(exc.msgid, **exc.params), "error")
        return _orphan_redirect()
    audit.record(
        AuditAction.ORPHAN_ACCEPTED,
        target=audit.target_of("payment", payment.id),
        detail={"callback": raw.id, "receipt": raw.receipt_number, "amount": raw.amount},
    )
    db.session.commit()
    flash(gettext("Accepted as sale %(id)s.", id=payment.id), "info")
    return _orphan_redirect()


def _where() -> close.Where | None:
    """The till or shop a Z report is for: `till` wins over `shop`; the first till by default."""
    till_id = listing.parse_id(request.values.get("till"))
    shop_id = listing.parse_id(request.values.get("shop"))
    if till_id is not None:
        till = db.session.get(Till, till_id)
        return close.Where(till=till) if till else None
    if shop_id is not None:
        shop = db.session.get(Shop, shop_id)
        return close.Where(shop=shop) if shop else None
    first = db.session.execute(select(Till).order_by(Till.id).limit(1)).scalar_one_or_none()
    return close.Where(till=first) if first else None


def _close_day() -> tuple[date, str | None]:
    today = today_nairobi()
    text = (request.values.get("day") or "").strip()
    if not text:
        return today, None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        return today, gettext("“%(value)s” is not a date; showing today.", value=text[:40])
    if not (EARLIEST_DAY <= day <= today):
        return today, gettext(
            "Choose days from %(earliest)s to today; showing today.", earliest=EARLIEST_DAY
        )
    return day, None


def _reconciled(day: date, where: close.Where) -> bool | None:
    """Whether a statement covers the day: of the till, or of every till of the shop."""
    tills = [where.till] if where.till else list(where.shop.tills)  # type: ignore[union-attr]
    if not tills:
        return None
    return all(day in statements.covered_days(t.id, Period(day, day)) for t in tills)


def _z_page(day: date, where: close.Where, error: str | None, typed: dict[int, str], status=200):
    report = close.build(day, where)
    record = close.closed(day, where)
    return (
        render_template(
            "owner/close.html",
            report=report,
            record=record,
            adjustments=close.adjustments(record, where) if record else [],
            reconciled=_reconciled(day, where),
            error=error,
            typed=typed,
            paper="80" if request.values.get("paper") == "80" else "a4",
            today=today_nairobi(),
            **_scope_choices(),
        ),
        status,
    )


@bp.get("/close")
@role_required(Role.OWNER)
def day_close():
    """The Z report of a till or a shop for one Nairobi day, and the close button."""
    day, error = _close_day()
    where = _where()
    if where is None:
        flash(gettext("There is no such till or shop."), "error")
        return redirect(url_for("owner.takings_page"))
    return _z_page(day, where, error, {})


@bp.post("/close")
@role_required(Role.OWNER)
def close_the_day():
    """Close the day: stored figures, who and when; refused while rows are open unexplained."""
    day, error = _close_day()
    where = _where()
    if where is None or error:
        flash(error or gettext("There is no such till or shop."), "error")
        return redirect(url_for("owner.takings_page"))
    typed = {
        pid: request.form.get(f"explain-{pid}", "")[:400]
        for pid in (listing.parse_id(k.removeprefix("explain-")) for k in request.form)
        if pid is not None
    }
    report = close.build(day, where)
    try:
        record = close.close_day(report, current_user, typed)
    except close.CloseError as exc:
        return _z_page(day, where, gettext(exc.msgid, **exc.params), typed, status=422)
    audit.record(
        AuditAction.DAY_CLOSED,
        target=where.key,
        detail={
            "day": day.isoformat(),
            "paid_kes": report.summary.paid_kes,
            "explained": sorted(record.explanations),
        },
    )
    db.session.commit()
    flash(gettext("The day is closed."), "info")
    return redirect(url_for("owner.day_close", day=day.isoformat(), **where.args()))
