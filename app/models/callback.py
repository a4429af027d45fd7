"""Every POST that reaches a callback URL, stored verbatim before it is parsed (the inbox)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models.types import UTCDateTime, utcnow


class RawCallback(db.Model):
    __tablename__ = "raw_callbacks"

    id: Mapped[int] = mapped_column(primary_key=True)
    till_id: Mapped[int | None] = mapped_column(ForeignKey("tills.id"))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    remote_addr: Mapped[str | None] = mapped_column(String(64))
    headers: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    checkout_request_id: Mapped[str | None] = mapped_column(String(64), index=True)
    #: what the body claimed, parsed, so an admin can match an orphan to a sale
    result_code: Mapped[str | None] = mapped_column(String(16))
    amount: Mapped[int | None]
    phone: Mapped[str | None] = mapped_column(String(12))
    receipt_number: Mapped[str | None] = mapped_column(String(20))
    #: received, applied, duplicate, orphan, conflict, invalid, error
    outcome: Mapped[str] = mapped_column(String(16), default="received")
    message: Mapped[str | None] = mapped_column(Text)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
