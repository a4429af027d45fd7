"""Statement reconciliation: store an uploaded M-PESA statement, match it, act on the result.

Parsing and matching are pure (app/reconcile/); this module is the database side: lines are
kept once per till and receipt (the same file twice, or overlapping statements, change
nothing), receipts pending are filled in at upload, and every decision about a line is an
event on the payment (source `statement`) or a stored decision on the line.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.i18n import N_
from app.models import CallbackOutcome, Payment, RawCallback, Till, User
from app.models.statement import StatementEntry, StatementUpload
from app.models.types import utcnow
from app.payments import service
from app.reconcile.match import OurOrphan, OurPayment, Reconciliation, reconcile
from app.reconcile.statement import StatementError, StatementLine, parse_statement
from app.reports.periods import Period
from app.timeutil import to_nairobi, today_nairobi

#: payments this far either side of the statement's days are read, for matching by time
MARGIN = timedelta(days=1)
#: the decision "paid outside PesaDesk" stored on a line
OUTSIDE = "outside"


@dataclass(frozen=True)
class UploadResult:
    upload: StatementUpload | None
    #: the very same file was uploaded before: nothing changed
    already: bool
    new_lines: int
    receipts_filled: int


def _expected_codes(till: Till) -> set[str]:
    return {code for code in (till.shortcode, till.till_number) if code}


def upload(till: Till, data: bytes, filename: str, user: User) -> UploadResult:
    """Parse, check and store a statement for `till`; raises StatementError (nothing stored)."""
    sha = hashlib.sha256(data).hexdigest()
    known = db.session.execute(
        select(StatementUpload).where(
            StatementUpload.till_id == till.id, StatementUpload.sha256 == sha
        )
    ).scalar_one_or_none()
    if known is not None:
        return UploadResult(known, True, 0, 0)
    statement = parse_statement(data, filename=filename)
    if statement.shortcode and statement.shortcode not in _expected_codes(till):
        raise StatementError(
            N_("This statement is for %(found)s, not for this till (%(expected)s)."),
            found=statement.shortcode,
            expected=till.till_number or till.shortcode,
        )
    if statement.period:
        first_day, last_day = statement.period
    elif statement.lines:
        days = [to_nairobi(line.completed_at).date() for line in statement.lines]  # type: ignore[union-attr]
        first_day, last_day = min(days), max(days)
    else:
        first_day = last_day = today_nairobi()
    record = StatementUpload(
        till_id=till.id,
        sha256=sha,
        filename=filename[:200] or "statement.csv",
        uploaded_by_id=user.id,
        first_day=first_day,
        last_day=last_day,
        line_count=len(statement.lines),
        new_lines=0,
    )
    db.session.add(record)
    db.session.flush()
    # Lines already stored (an overlapping statement): a receipt's line always has the same
    # completion time, so one indexed range read finds them, with no list of receipts to send.
    times = [line.completed_at for line in statement.lines]
    have: set[str] = set()
    if times:
        have = set(
            db.session.execute(
                select(StatementEntry.receipt).where(
                    StatementEntry.till_id == till.id,
                    StatementEntry.completed_at >= min(times),
                    StatementEntry.completed_at <= max(times),
                )
            ).scalars()
        )
    # A fee line carries the receipt of the payment it was taken on: fees and settlements
    # are not kept (matching ignores them), so a receipt is stored once, with its payment.
    fresh: list[StatementLine] = []
    for line in statement.lines:
        if line.receipt not in have and not line.is_charge_or_settlement:
            have.add(line.receipt)
            fresh.append(line)
    try:
        _store_lines([_entry(till.id, record.id, line) for line in fresh])
    except IntegrityError:
        db.session.rollback()
        raise StatementError(
            N_("Another statement for this till was being stored at the same time. Try again.")
        ) from None
    record.new_lines = len(fresh)
    db.session.flush()
    filled = _fill_pending_receipts(till, statement.lines)
    db.session.commit()
    return UploadResult(record, False, len(fresh), filled)


def _entry(till_id: int, upload_id: int, line: StatementLine) -> dict[str, object]:
    phone = line.phone_digits_visible
    return {
        "till_id": till_id,
        "upload_id": upload_id,
        "line": line.line,
        "receipt": line.receipt[:32],
        "completed_at": line.completed_at,
        "initiated_at": line.initiated_at,
        "details": line.details[:200],
        "status": line.status[:40],
        "paid_in_cents": line.paid_in_cents,
        "withdrawn_cents": line.withdrawn_cents,
        "reason_type": line.reason_type[:100],
        "other_party": line.other_party[:200],
        "phone_visible": phone[:20] if phone else None,
        "party_name": line.party_name[:120],
        "linked_receipt": line.linked_receipt[:32] if line.linked_receipt else None,
        "account": line.account[:40] if line.account else None,
        "decision": None,
    }


def _store_lines(rows: list[dict[str, object]]) -> None:
    """Insert statement lines in this transaction: PostgreSQL's COPY (a 100,000-line statement
    in well under a second, where row-by-row inserts take seconds), executemany elsewhere."""
    if not rows:
        return
    connection = db.session.connection()
    if connection.dialect.name != "postgresql":
        connection.execute(insert(StatementEntry.__table__), rows)
        return
    columns = list(rows[0])
    copy_sql = f"COPY statement_entries ({', '.join(columns)}) FROM STDIN"
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    with cursor.copy(copy_sql) as copy:
        for row in rows:
            copy.write_row([row[name] for name in columns])


@dataclass(frozen=True, slots=True)
class Entry:
    """What a page needs of a stored line besides its content: its id and any decision."""

    id: int
    decision: str | None


_ENTRY_COLUMNS = (
    StatementEntry.id,
    StatementEntry.decision,
    StatementEntry.line,
    StatementEntry.receipt,
    StatementEntry.completed_at,
    StatementEntry.initiated_at,
    StatementEntry.details,
    StatementEntry.status,
    StatementEntry.paid_in_cents,
    StatementEntry.withdrawn_cents,
    StatementEntry.reason_type,
    StatementEntry.other_party,
    StatementEntry.phone_visible,
    StatementEntry.party_name,
    StatementEntry.linked_receipt,
    StatementEntry.account,
)


def _line(row) -> StatementLine:  # noqa: ANN001 - a Row of _ENTRY_COLUMNS
    return StatementLine(
        line=row.line,
        receipt=row.receipt,
        completed_at=row.completed_at,
        initiated_at=row.initiated_at,
        details=row.details,
        status=row.status,
        paid_in_cents=row.paid_in_cents,
        withdrawn_cents=row.withdrawn_cents,
        balance_cents=None,
        reason_type=row.reason_type,
        other_party=row.other_party,
        phone_digits_visible=row.phone_visible,
        party_name=row.party_name,
        linked_receipt=row.linked_receipt,
        account=row.account,
    )


@dataclass
class Result:
    """The reconciliation of one till over some days, with the rows behind it."""

    till: Till
    period: Period
    result: Reconciliation
    #: receipt → the stored line's id and decision
    entries: dict[str, Entry]
    #: days of the period that a statement covers
    covered_days: set[date]


def covered_days(till_id: int, period: Period) -> set[date]:
    """The days of `period` that some uploaded statement of the till covers."""
    uploads = db.session.execute(
        select(StatementUpload.first_day, StatementUpload.last_day).where(
            StatementUpload.till_id == till_id,
            StatementUpload.first_day <= period.end,
            StatementUpload.last_day >= period.start,
        )
    ).all()
    days = set(period.each_day())
    return {d for d in days if any(first <= d <= last for first, last in uploads)}


def _our_side(
    till: Till, start: datetime, end: datetime
) -> tuple[list[OurPayment], list[OurOrphan]]:
    """The till's payments and orphan callbacks around [start, end), as the matcher takes them."""
    lo, hi = start - MARGIN, end + MARGIN
    p = Payment.__table__.c
    payments = [
        OurPayment(
            id=row.id,
            till_id=row.till_id,
            amount_kes=row.amount_kes,
            phone=row.phone,
            receipt=row.receipt_number,
            status=row.status,
            paid_at=row.final_at if row.status == "paid" else None,
            created_at=row.created_at,
        )
        for row in db.session.execute(
            select(
                p.id, p.till_id, p.amount_kes, p.phone, p.receipt_number, p.status, p.final_at,
                p.created_at,
            ).where(p.till_id == till.id, p.created_at >= lo, p.created_at < hi)
        )
    ]  # fmt: skip
    r = RawCallback.__table__.c
    orphans = [
        OurOrphan(
            id=row.id,
            receipt=row.receipt_number,
            amount_kes=row.amount,
            phone=row.phone,
            received_at=row.received_at,
        )
        for row in db.session.execute(
            select(r.id, r.receipt_number, r.amount, r.phone, r.received_at).where(
                r.till_id == till.id,
                r.outcome == CallbackOutcome.ORPHAN,
                r.received_at >= lo,
                r.received_at < hi,
            )
        )
    ]
    return payments, orphans


def reconcile_till(till: Till, period: Period) -> Result:
    """Match the stored lines of the period with our payments and orphans (rows, not ORM
    objects: a statement holds a hundred thousand lines)."""
    start, end = period.utc_bounds()
    rows = db.session.execute(
        select(*_ENTRY_COLUMNS)
        .where(
            StatementEntry.till_id == till.id,
            StatementEntry.completed_at >= start,
            StatementEntry.completed_at < end,
        )
        .order_by(StatementEntry.completed_at, StatementEntry.id)
    ).all()
    payments, orphans = _our_side(till, start, end)
    entries = {row.receipt: Entry(row.id, row.decision) for row in rows}
    covered = covered_days(till.id, period)
    days = sorted(covered)
    result = reconcile(
        [_line(row) for row in rows],
        payments,
        orphans,
        period=(days[0], days[-1]) if days else None,
    )
    # Only a day some statement covers can prove a sale missing from it (the covered days
    # need not be one run: two statements may leave a gap).
    result.ours_only = [
        item
        for item in result.ours_only
        if item.payment.paid_at is not None and to_nairobi(item.payment.paid_at).date() in covered  # type: ignore[union-attr]
    ]
    return Result(till, period, result, entries, covered)


def _fill_pending_receipts(till: Till, lines: list[StatementLine]) -> int:
    """At upload: each paid sale with its receipt pending that a line of this statement matched
    by amount, phone and time gets that receipt (an event with source `statement`)."""
    if not lines:
        return 0
    times = [line.completed_at for line in lines]
    payments, orphans = _our_side(till, min(times), max(times) + timedelta(seconds=1))
    filled = 0
    for item in reconcile(lines, payments, orphans).matched_by_details:
        payment = db.session.get(Payment, item.payment.id)
        if payment is not None and service.receipt_from_statement(
            payment, item.line.receipt, line_note=f"line {item.line.line}"
        ):
            filled += 1
    return filled


def mark_outside(entry: StatementEntry, user: User) -> None:
    """An owner says this money was paid outside PesaDesk (straight to the till). The caller
    commits."""
    entry.decision, entry.decided_by_id, entry.decided_at = OUTSIDE, user.id, utcnow()
