"""M-PESA statements uploaded for a till, and their lines, kept once per receipt."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.types import UTCDateTime, utcnow


class StatementUpload(db.Model):
    """One uploaded file. The same file twice is refused by its hash: nothing changes."""

    __tablename__ = "statement_uploads"
    __table_args__ = (UniqueConstraint("till_id", "sha256", name="uq_statement_uploads_file"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    till_id: Mapped[int] = mapped_column(ForeignKey("tills.id"))
    sha256: Mapped[str] = mapped_column(String(64))
    filename: Mapped[str] = mapped_column(String(200))
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    uploaded_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    #: the Nairobi days the statement covers (its stated period, else its first to last line)
    first_day: Mapped[date] = mapped_column(Date)
    last_day: Mapped[date] = mapped_column(Date)
    line_count: Mapped[int]
    #: lines not already known from an earlier, overlapping statement
    new_lines: Mapped[int]

    uploaded_by = relationship("User")


class StatementEntry(db.Model):
    """A statement line, stored once per till and receipt (overlapping statements are fine),
    with what a person decided about it, if anything."""

    __tablename__ = "statement_entries"
    __table_args__ = (
        UniqueConstraint("till_id", "receipt", name="uq_statement_entries_receipt"),
        Index("ix_statement_entries_till_id_completed_at", "till_id", "completed_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    till_id: Mapped[int] = mapped_column(ForeignKey("tills.id"))
    upload_id: Mapped[int] = mapped_column(ForeignKey("statement_uploads.id"))
    line: Mapped[int]
    receipt: Mapped[str] = mapped_column(String(32))
    completed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    initiated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    details: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(40))
    paid_in_cents: Mapped[int]
    withdrawn_cents: Mapped[int]
    reason_type: Mapped[str] = mapped_column(String(100))
    other_party: Mapped[str] = mapped_column(String(200))
    phone_visible: Mapped[str | None] = mapped_column(String(20))
    party_name: Mapped[str] = mapped_column(String(120))
    linked_receipt: Mapped[str | None] = mapped_column(String(32))
    account: Mapped[str | None] = mapped_column(String(40))
    #: "outside": an owner marked it "paid outside PesaDesk"; None: nobody decided
    decision: Mapped[str | None] = mapped_column(String(16))
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
