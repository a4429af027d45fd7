"""Flags a human should see on a payment: conflict, paid after cancel, receipt pending, by hand."""

from __future__ import annotations

import enum
from collections.abc import Iterable

from sqlalchemy import select

from app.extensions import db
from app.i18n import N_
from app.models import Payment, PaymentEvent, StatementEntry, StatementUpload
from app.payments.states import Event, Mark, Source, Status
from app.timeutil import to_nairobi


class Flag(enum.StrEnum):
    #: some fact contradicted what we knew (a flagged event): look at the timeline
    CONFLICT = "conflict"
    #: the cashier gave up on the sale, and the customer paid anyway
    PAID_AFTER_CANCEL = "paid_after_cancel"
    #: paid (learned by query or by hand) but no receipt number yet
    RECEIPT_PENDING = "receipt_pending"
    #: an admin settled it, or typed its receipt, by hand
    SETTLED_BY_HAND = "settled_by_hand"
    #: paid here, on a day an uploaded M-PESA statement covers, and not on that statement
    NOT_ON_STATEMENT = "not_on_statement"


#: English msgids: the pages translate them (`_(flag_labels[f])`)
LABELS = {
    Flag.CONFLICT: N_("conflict"),
    Flag.PAID_AFTER_CANCEL: N_("paid after cancel"),
    Flag.RECEIPT_PENDING: N_("receipt pending"),
    Flag.SETTLED_BY_HAND: N_("settled by hand"),
    Flag.NOT_ON_STATEMENT: N_("not on statement"),
}

#: the kinds of a manual event that settle a payment (or its receipt) by hand
BY_HAND_KINDS = (str(Event.SUCCESS), str(Event.FAILURE), str(Mark.RECEIPT_ATTACHED))
_CHUNK = 500


def _event_payment_ids(ids: list[int], *where) -> set[int]:  # noqa: ANN002
    found: set[int] = set()
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        found.update(
            db.session.execute(
                select(PaymentEvent.payment_id)
                .where(PaymentEvent.payment_id.in_(chunk), *where)
                .distinct()
            ).scalars()
        )
    return found


def flags_for(payments: Iterable[Payment]) -> dict[int, list[Flag]]:
    """payment id → its flags, in a constant number of queries per 500 payments."""
    payments = list(payments)
    ids = [p.id for p in payments]
    conflicted = _event_payment_ids(ids, PaymentEvent.conflict.is_(True))
    by_hand = _event_payment_ids(
        ids, PaymentEvent.source == Source.MANUAL, PaymentEvent.kind.in_(BY_HAND_KINDS)
    )
    missing = _not_on_statement([p for p in payments if p.status == Status.PAID])
    result: dict[int, list[Flag]] = {}
    for p in payments:
        flags = []
        if p.id in conflicted:
            flags.append(Flag.CONFLICT)
        if p.status == Status.PAID and p.cancelled_at is not None:
            flags.append(Flag.PAID_AFTER_CANCEL)
        if p.status == Status.PAID and not p.receipt_number:
            flags.append(Flag.RECEIPT_PENDING)
        if p.id in by_hand:
            flags.append(Flag.SETTLED_BY_HAND)
        if p.id in missing:
            flags.append(Flag.NOT_ON_STATEMENT)
        result[p.id] = flags
    return result


def _not_on_statement(paid: list[Payment]) -> set[int]:
    """The paid payments whose day a statement of their till covers, and that it lacks."""
    if not paid:
        return set()
    tills = {p.till_id for p in paid}
    uploads = db.session.execute(
        select(StatementUpload.till_id, StatementUpload.first_day, StatementUpload.last_day).where(
            StatementUpload.till_id.in_(tills)
        )
    ).all()
    if not uploads:
        return set()
    covered = [
        p
        for p in paid
        if p.final_at is not None
        and any(
            till_id == p.till_id and first <= to_nairobi(p.final_at).date() <= last  # type: ignore[union-attr]
            for till_id, first, last in uploads
        )
    ]
    receipts = {p.receipt_number for p in covered if p.receipt_number}
    listed: set[tuple[int, str]] = set()
    for start in range(0, len(receipts), _CHUNK):
        chunk = sorted(receipts)[start : start + _CHUNK]
        rows = db.session.execute(
            select(StatementEntry.till_id, StatementEntry.receipt).where(
                StatementEntry.receipt.in_(chunk)
            )
        )
        listed.update((till_id, receipt) for till_id, receipt in rows)
    return {p.id for p in covered if (p.till_id, p.receipt_number or "") not in listed}
