"""The Daraja access token of each till, shared by every worker and process of an install."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, LargeBinary
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models.types import UTCDateTime, utcnow


class DarajaToken(db.Model):
    __tablename__ = "daraja_tokens"

    till_id: Mapped[int] = mapped_column(ForeignKey("tills.id"), primary_key=True)
    #: Fernet ciphertext of the bearer token (it is a credential for an hour)
    access_token_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    #: epoch seconds, as the Daraja client counts them
    expires_at: Mapped[float | None]
    #: how many tokens this install has fetched for the till (evidence for "one per expiry")
    fetch_count: Mapped[int] = mapped_column(default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
