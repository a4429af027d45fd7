"""A payment attempt (one STK push) and the append-only log of what happened to it."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.daraja.schemas import (
    CHECKOUT_ID_MAX,
    RECEIPT_MAX,
    RESULT_CODE_MAX,
    TRANSACTION_DATE_MAX,
)
from app.extensions import db
from app.models.types import UTCDateTime, utcnow


class Payment(db.Model):
    __tablename__ = "payments"
    __table_args__ = (
        CheckConstraint("amount_kes > 0", name="amount_positive"),
        Index("ix_payments_status_next_query_at", "status", "next_query_at"),
        # The owner's list pages newest first by (created_at, id) (app/reports/listing.py).
        # On PostgreSQL it also carries what the takings' "started in the period" counts read,
        # so they are index-only scans (app/reports/takings.py).
        Index(
            "ix_payments_created_at_id",
            "created_at",
            "id",
            postgresql_include=["status", "till_id", "cashier_id", "result_code"],
        ),
        # Takings count paid sales by the instant they were paid: a range of one status,
        # covering what the sums and groupings read (app/reports/takings.py).
        Index(
            "ix_payments_status_final_at",
            "status",
            "final_at",
            "till_id",
            "cashier_id",
            "amount_kes",
        ),
        # The counter: a till's (or a cashier's) sales of one Nairobi day, newest first.
        Index("ix_payments_till_id_created_at", "till_id", "created_at"),
        Index("ix_payments_cashier_id_created_at", "cashier_id", "created_at"),
        # M-Pesa's refusal windows (app.payments.guards): a phone's pushes of the last minutes.
        Index("ix_payments_phone_pushed_at", "phone", "pushed_at"),
        # Which attempt re-sent which (app.payments.resend); few rows are resends, so the
        # index holds only those (it also serves the self-referencing foreign key).
        Index(
            "ix_payments_resend_of_id",
            "resend_of_id",
            postgresql_where=text("resend_of_id IS NOT NULL"),
            sqlite_where=text("resend_of_id IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    till_id: Mapped[int] = mapped_column(ForeignKey("tills.id"))
    cashier_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    #: one per cashier attempt (hidden form field); a double submit finds the same row
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    #: shared by every attempt (resend) of one sale at the counter
    sale_ref: Mapped[str] = mapped_column(String(32), default=lambda: uuid.uuid4().hex, index=True)
    #: the attempt this one re-sends, if any
    resend_of_id: Mapped[int | None] = mapped_column(ForeignKey("payments.id"))
    #: set when the cashier gave up on the sale here (Daraja cannot withdraw a prompt)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cancelled_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    #: normalised MSISDN, 2547XXXXXXXX or 2541XXXXXXXX
    phone: Mapped[str] = mapped_column(String(12))
    #: whole shillings; M-Pesa takes nothing else
    amount_kes: Mapped[int]
    account_reference: Mapped[str] = mapped_column(String(12))
    transaction_desc: Mapped[str] = mapped_column(String(13))
    #: see app.payments.states.Status; changed only by app.payments.service
    status: Mapped[str] = mapped_column(String(16), default="initiating")
    merchant_request_id: Mapped[str | None] = mapped_column(String(CHECKOUT_ID_MAX))
    checkout_request_id: Mapped[str | None] = mapped_column(String(CHECKOUT_ID_MAX), unique=True)
    #: a CheckoutRequestID that a callback matched only by phone, amount and time claims for
    #: this payment (its push answer was lost); believed only once an STK query on our
    #: shortcode confirms it, then moved to checkout_request_id
    candidate_checkout_id: Mapped[str | None] = mapped_column(String(CHECKOUT_ID_MAX))
    #: final ResultCode as text (callbacks send a number, queries a string, some are 'SFC_IC0003')
    result_code: Mapped[str | None] = mapped_column(String(RESULT_CODE_MAX))
    result_desc: Mapped[str | None] = mapped_column(Text)
    #: Daraja's errorCode/errorMessage when the push itself was refused or failed
    push_error_code: Mapped[str | None] = mapped_column(String(32))
    push_error_message: Mapped[str | None] = mapped_column(Text)
    receipt_number: Mapped[str | None] = mapped_column(String(RECEIPT_MAX), unique=True)
    #: TransactionDate from the callback as sent: YYYYMMDDHHmmss in Africa/Nairobi from
    #: Safaricom, other shapes from look-alikes (see app.filters.paid_at)
    mpesa_transaction_date: Mapped[str | None] = mapped_column(String(TRANSACTION_DATE_MAX))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    pushed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: when a request claimed the right to send this push (app.payments.service.send_push):
    #: set once, before anything leaves; a row never claimed was never sent
    push_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    final_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: when the status poller should next ask Daraja; NULL = nothing left to ask
    next_query_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    query_count: Mapped[int] = mapped_column(default=0)
    #: which scheduler process holds this payment's current query slot (the lease ends at
    #: next_query_at, which the claim moved forward)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    #: optimistic lock: concurrent writers (callback vs poller) cannot both apply a change
    version: Mapped[int] = mapped_column(default=1)

    till = relationship("Till")
    cashier = relationship("User", foreign_keys=[cashier_id])
    events: Mapped[list[PaymentEvent]] = relationship(
        back_populates="payment", order_by="PaymentEvent.id"
    )

    __mapper_args__ = {"version_id_col": version}


class PaymentEvent(db.Model):
    __tablename__ = "payment_events"
    __table_args__ = (UniqueConstraint("payment_id", "idem_key", name="uq_payment_events_idem"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    payment_id: Mapped[int] = mapped_column(ForeignKey("payments.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    #: an app.payments.states.Source
    source: Mapped[str] = mapped_column(String(16))
    #: an app.payments.states.Event (it went through the table) or Mark (recorded only)
    kind: Mapped[str] = mapped_column(String(24))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    #: True when the event was recorded but contradicted what we already knew
    conflict: Mapped[bool] = mapped_column(default=False)
    result_code: Mapped[str | None] = mapped_column(String(RESULT_CODE_MAX))
    note: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    #: the stored callback that carried this event, if any
    raw_callback_id: Mapped[int | None] = mapped_column(ForeignKey("raw_callbacks.id"))
    #: unique per payment: the same fact applied twice cannot append twice
    idem_key: Mapped[str] = mapped_column(String(96))

    payment: Mapped[Payment] = relationship(back_populates="events")


class PaymentQuery(db.Model):
    """One STK query sent by the poller: who sent it, for which slot, and what it learned."""

    __tablename__ = "payment_queries"
    __table_args__ = (
        # Two scheduler processes can never both query one payment for the same slot.
        UniqueConstraint("payment_id", "slot_at", name="uq_payment_queries_slot"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    payment_id: Mapped[int] = mapped_column(ForeignKey("payments.id"), index=True)
    #: the payment's next_query_at when it was claimed
    slot_at: Mapped[datetime] = mapped_column(UTCDateTime())
    worker: Mapped[str] = mapped_column(String(64))
    queried_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    #: pending, final:<code>, error:<kind>
    answer: Mapped[str | None] = mapped_column(String(48))
