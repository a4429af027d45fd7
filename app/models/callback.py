"""Every POST that reaches a callback URL, stored verbatim before it is parsed (the inbox)."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.daraja.schemas import CHECKOUT_ID_MAX, RECEIPT_MAX, RESULT_CODE_MAX
from app.extensions import db
from app.models.types import UTCDateTime, utcnow


class CallbackOutcome(enum.StrEnum):
    """What processing a stored callback did (the inbox's outcome column)."""

    RECEIVED = "received"  # stored, not processed yet (or the database failed mid-way)
    APPLIED = "applied"  # it moved its payment, or brought its receipt
    DUPLICATE = "duplicate"  # the same fact again: nothing changed
    CONFLICT = "conflict"  # it contradicts what we know; kept for a human, nothing moved
    #: matched only by phone, amount and time to a payment whose push answer was lost;
    #: waits for an STK query to confirm its CheckoutRequestID
    CANDIDATE = "candidate"
    #: a candidate the query did not confirm (unknown id, another id, another result)
    REFUTED = "refuted"
    ORPHAN = "orphan"  # no payment of ours matches it (yet)
    INVALID = "invalid"  # not an STK callback we can read, or a value that fits no column
    ERROR = "error"  # a bug while applying it; the message says what


class RawCallback(db.Model):
    __tablename__ = "raw_callbacks"
    __table_args__ = (
        # The inbox sweep looks for a few rows by outcome (received, orphan, candidate).
        Index("ix_raw_callbacks_outcome_received_at", "outcome", "received_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    till_id: Mapped[int | None] = mapped_column(ForeignKey("tills.id"))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    remote_addr: Mapped[str | None] = mapped_column(String(64))
    headers: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    checkout_request_id: Mapped[str | None] = mapped_column(String(CHECKOUT_ID_MAX), index=True)
    #: what the body claimed, parsed, so an admin can match an orphan to a sale
    result_code: Mapped[str | None] = mapped_column(String(RESULT_CODE_MAX))
    amount: Mapped[int | None]
    #: the 12-digit MSISDN, or None when absent or masked (the body keeps what was sent)
    phone: Mapped[str | None] = mapped_column(String(12))
    receipt_number: Mapped[str | None] = mapped_column(String(RECEIPT_MAX))
    #: the payment it was applied to, or is a candidate for
    payment_id: Mapped[int | None] = mapped_column(ForeignKey("payments.id"), index=True)
    #: a CallbackOutcome
    outcome: Mapped[str] = mapped_column(String(16), default=CallbackOutcome.RECEIVED)
    message: Mapped[str | None] = mapped_column(Text)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    till = relationship("Till")
