"""Statement reconciliation: store an uploaded M-PESA statement, match it, act on the result.

Parsing and matching are pure (app/reconcile/); this module is the database side: lines are
kept once per till and receipt (the same file twice, or overlapping statements, change
nothing), receipts pending are filled in at upload, and every decision about a line is an
event on the payment (source `statement`) or a stored decision on the line.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import select

from app.extensions import db
from app.i18n import N_
from app.models import CallbackOutcome, Payment, RawCallback, Till, User
from app.models.statement import StatementEntry, StatementUpload
from app.models.types import utcnow
from app.payments import service
from app.reconcile.match import OurOrphan, OurPayment, Reconciliation, reconcile
from app.reconcile.statement import StatementError, StatementLine, parse_statement
from app.reports.periods import Period
from app.timeutil import to_nairobi

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
        first_day = last_day = date.today()
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
    have = set(
        db.session.execute(
            select(StatementEntry.receipt).where(
                StatementEntry.till_id == till.id,
                StatementEntry.receipt.in_([line.receipt for line in statement.lines] or [""]),
            )
        ).scalars()
    )
    fresh = [line for line in statement.lines if line.receipt not in have]
    db.session.add_all(_entry(till.id, record.id, line) for line in fresh)
    record.new_lines = len(fresh)
    db.session.flush()
    filled = _fill_pending_receipts(till, Period(first_day, last_day))
    db.session.commit()
    return UploadResult(record, False, len(fresh), filled)


def _entry(till_id: int, upload_id: int, line: StatementLine) -> StatementEntry:
    return StatementEntry(
        till_id=till_id,
        upload_id=upload_id,
        line=line.line,
        receipt=line.receipt[:32],
        completed_at=line.completed_at,
        initiated_at=line.initiated_at,
        details=line.details[:200],
        status=line.status[:40],
        paid_in_cents=line.paid_in_cents,
        withdrawn_cents=line.withdrawn_cents,
        reason_type=line.reason_type[:100],
        other_party=line.other_party[:200],
        phone_visible=(line.phone_digits_visible or None) and line.phone_digits_visible[:20],
        party_name=line.party_name[:120],
        linked_receipt=line.linked_receipt[:32] if line.linked_receipt else None,
        account=line.account[:40] if line.account else None,
    )


def _line(entry: StatementEntry) -> StatementLine:
    return StatementLine(
        line=entry.line,
        receipt=entry.receipt,
        completed_at=entry.completed_at,
        initiated_at=entry.initiated_at,
        details=entry.details,
        status=entry.status,
        paid_in_cents=entry.paid_in_cents,
        withdrawn_cents=entry.withdrawn_cents,
        balance_cents=None,
        reason_type=entry.reason_type,
        other_party=entry.other_party,
        phone_digits_visible=entry.phone_visible,
        party_name=entry.party_name,
        linked_receipt=entry.linked_receipt,
        account=entry.account,
    )


@dataclass
class Result:
    """The reconciliation of one till over some days, with the rows behind it."""

    till: Till
    period: Period
    result: Reconciliation
    #: receipt → the stored line (for decisions and their ids)
    entries: dict[str, StatementEntry]
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


def reconcile_till(till: Till, period: Period) -> Result:
    start, end = period.utc_bounds()
    entries = list(
        db.session.execute(
            select(StatementEntry)
            .where(
                StatementEntry.till_id == till.id,
                StatementEntry.completed_at >= start,
                StatementEntry.completed_at < end,
            )
            .order_by(StatementEntry.completed_at, StatementEntry.id)
        ).scalars()
    )
    lo, hi = start - MARGIN, end + MARGIN
    payments = [
        OurPayment(
            id=p.id,
            till_id=p.till_id,
            amount_kes=p.amount_kes,
            phone=p.phone,
            receipt=p.receipt_number,
            status=p.status,
            paid_at=p.final_at if p.status == "paid" else None,
            created_at=p.created_at,
        )
        for p in db.session.execute(
            select(Payment).where(
                Payment.till_id == till.id, Payment.created_at >= lo, Payment.created_at < hi
            )
        ).scalars()
    ]
    orphans = [
        OurOrphan(
            id=r.id,
            receipt=r.receipt_number,
            amount_kes=r.amount,
            phone=r.phone,
            received_at=r.received_at,
        )
        for r in db.session.execute(
            select(RawCallback).where(
                RawCallback.till_id == till.id,
                RawCallback.outcome == CallbackOutcome.ORPHAN,
                RawCallback.received_at >= lo,
                RawCallback.received_at < hi,
            )
        ).scalars()
    ]
    covered = covered_days(till.id, period)
    days = sorted(covered)
    result = reconcile(
        [_line(e) for e in entries],
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
    return Result(till, period, result, {e.receipt: e for e in entries}, covered)


def _fill_pending_receipts(till: Till, period: Period) -> int:
    """At upload: each paid sale with its receipt pending that a line matched by amount, phone
    and time gets that receipt (an event with source `statement`)."""
    found = reconcile_till(till, period).result.matched_by_details
    filled = 0
    for item in found:
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
