"""The admin's view of the audit log: newest first, filtered, and exported as CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import date

from flask import Response, render_template, request, stream_with_context, url_for
from sqlalchemy import Select, select

from app.admin.views import bp
from app.auth.roles import role_required
from app.extensions import db
from app.models import AuditAction, AuditEntry, Role
from app.timeutil import is_reportable_day, nairobi_day_bounds, to_nairobi, today_nairobi

PAGE = 100
_CSV_BATCH = 1000


def _day(name: str) -> date | None:
    try:
        day = date.fromisoformat(request.args.get(name) or "")
    except ValueError:
        return None
    return day if is_reportable_day(day, today_nairobi()) else None


def _filtered() -> tuple[Select, dict[str, str]]:
    """The entries the query string asks for, and the filters as given (for the form)."""
    query = select(AuditEntry)
    given: dict[str, str] = {}
    action = request.args.get("action", "")
    if action in set(AuditAction):
        query = query.where(AuditEntry.action == action)
        given["action"] = action
    actor = (request.args.get("actor") or "").strip()[:64]
    if actor:
        query = query.where(AuditEntry.actor_name == actor)
        given["actor"] = actor
    target = (request.args.get("target") or "").strip()[:64]
    if target:
        query = query.where(AuditEntry.target == target)
        given["target"] = target
    since, until = _day("from"), _day("to")
    if since is not None:
        query = query.where(AuditEntry.at >= nairobi_day_bounds(since)[0])
        given["from"] = since.isoformat()
    if until is not None:
        query = query.where(AuditEntry.at < nairobi_day_bounds(until)[1])
        given["to"] = until.isoformat()
    return query, given


@bp.get("/audit")
@role_required(Role.ADMIN)
def audit():
    """Newest first; `before` pages back by id (as fast on the hundredth page as the first)."""
    query, given = _filtered()
    before = request.args.get("before", "")
    if before.isascii() and before.isdigit() and len(before) < 11:
        query = query.where(AuditEntry.id < int(before))
    rows = db.session.execute(query.order_by(AuditEntry.id.desc()).limit(PAGE + 1)).scalars().all()
    older = url_for("admin.audit", **given, before=rows[PAGE - 1].id) if len(rows) > PAGE else None
    return render_template(
        "admin/audit.html",
        rows=rows[:PAGE],
        given=given,
        actions=list(AuditAction),
        older=older,
        export=url_for("admin.audit_csv", **given),
    )


@bp.get("/audit.csv")
@role_required(Role.ADMIN)
def audit_csv():
    """The filtered log as CSV (UTF-8 with BOM for Excel; Nairobi times), streamed in batches."""
    query, _given = _filtered()

    def lines() -> Iterator[str]:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["id", "at (Nairobi)", "actor", "from", "action", "target", "detail"])
        yield "\ufeff" + out.getvalue()
        last = None
        while True:
            batch_query = query.order_by(AuditEntry.id.desc()).limit(_CSV_BATCH)
            if last is not None:
                batch_query = batch_query.where(AuditEntry.id < last)
            batch = db.session.execute(batch_query).scalars().all()
            if not batch:
                return
            out.seek(0)
            out.truncate()
            for e in batch:
                writer.writerow(
                    [
                        e.id,
                        to_nairobi(e.at).strftime("%Y-%m-%d %H:%M:%S"),
                        e.actor_name or "",
                        e.remote_addr or "",
                        e.action,
                        e.target or "",
                        _detail_text(e.detail),
                    ]
                )
            yield out.getvalue()
            last = batch[-1].id
            db.session.expunge_all()  # a long export holds one batch in memory, not all

    response = Response(stream_with_context(lines()), mimetype="text/csv")
    response.headers["Content-Disposition"] = "attachment; filename=pesadesk-audit.csv"
    return response


def _detail_text(detail: dict | None) -> str:
    if not detail:
        return ""
    return "; ".join(f"{key}={value}" for key, value in sorted(detail.items()))
