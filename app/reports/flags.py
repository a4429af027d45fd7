"""Flags a human should see on a payment: conflict, paid after cancel, receipt pending, by hand."""

from __future__ import annotations

import enum
from collections.abc import Iterable

from sqlalchemy import select

from app.extensions import db
from app.i18n import N_
from app.models import Payment, PaymentEvent
from app.payments.states import Event, Mark, Source, Status


class Flag(enum.StrEnum):
    #: some fact contradicted what we knew (a flagged event): look at the timeline
    CONFLICT = "conflict"
    #: the cashier gave up on the sale, and the customer paid anyway
    PAID_AFTER_CANCEL = "paid_after_cancel"
    #: paid (learned by query or by hand) but no receipt number yet
    RECEIPT_PENDING = "receipt_pending"
    #: an admin settled it, or typed its receipt, by hand
    SETTLED_BY_HAND = "settled_by_hand"


#: English msgids: the pages translate them (`_(flag_labels[f])`)
LABELS = {
    Flag.CONFLICT: N_("conflict"),
    Flag.PAID_AFTER_CANCEL: N_("paid after cancel"),
    Flag.RECEIPT_PENDING: N_("receipt pending"),
    Flag.SETTLED_BY_HAND: N_("settled by hand"),
}

_BY_HAND = (str(Event.SUCCESS), str(Event.FAILURE), str(Mark.RECEIPT_ATTACHED))
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
        ids, PaymentEvent.source == Source.MANUAL, PaymentEvent.kind.in_(_BY_HAND)
    )
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
        result[p.id] = flags
    return result
