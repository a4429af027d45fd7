"""A paybill or till: its shortcodes, encrypted Daraja credentials and secret callback token."""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy import CheckConstraint, LargeBinary, String
from sqlalchemy import false as sa_false
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models.types import UTCDateTime, utcnow

ENVIRONMENTS = ("simulator", "sandbox", "production")
TILL_TYPES = ("paybill", "till")


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def new_callback_token() -> str:
    return secrets.token_urlsafe(24)


class Till(db.Model):
    __tablename__ = "tills"
    __table_args__ = (
        CheckConstraint(_one_of("till_type", TILL_TYPES), name="till_type"),
        CheckConstraint(_one_of("environment", ENVIRONMENTS), name="environment"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80))
    #: BusinessShortCode: the paybill, or for a till the store/HO number used at go-live
    shortcode: Mapped[str] = mapped_column(String(12))
    till_type: Mapped[str] = mapped_column(String(8), default="paybill")
    #: PartyB for Buy Goods; unused for a paybill (PartyB is then the shortcode)
    till_number: Mapped[str | None] = mapped_column(String(12))
    environment: Mapped[str] = mapped_column(String(12), default="sandbox")
    #: Fernet ciphertexts; see app.crypto. Never rendered back, never logged.
    consumer_key_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    consumer_secret_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    passkey_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    #: last characters of each secret, kept in clear so the admin can recognise them
    consumer_key_hint: Mapped[str | None] = mapped_column(String(4))
    consumer_secret_hint: Mapped[str | None] = mapped_column(String(4))
    passkey_hint: Mapped[str | None] = mapped_column(String(4))
    #: secret path segment of this till's callback URL; Daraja callbacks carry no signature
    callback_token: Mapped[str] = mapped_column(String(64), unique=True, default=new_callback_token)
    #: most STK queries per second this till may send (Daraja's limits are not published)
    query_budget_per_s: Mapped[float] = mapped_column(default=2.0, server_default="2")
    #: accept numbers on other networks' prefixes (customers who ported their number to
    #: Safaricom); off, such numbers are refused before anything is sent
    allow_ported_numbers: Mapped[bool] = mapped_column(default=False, server_default=sa_false())
    #: after a spike-arrest or quota answer, no query for this till before this instant
    backoff_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: the next instant at which this till's query budget allows a query (shared by processes)
    query_slot_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    @property
    def transaction_type(self) -> str:
        return "CustomerBuyGoodsOnline" if self.till_type == "till" else "CustomerPayBillOnline"

    @property
    def party_b(self) -> str:
        return (self.till_number or "") if self.till_type == "till" else self.shortcode
