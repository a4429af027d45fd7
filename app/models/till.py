"""Shops (branches) and their tills: shortcodes, encrypted Daraja credentials, callback tokens."""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy import CheckConstraint, Column, ForeignKey, LargeBinary, String, Table
from sqlalchemy import false as sa_false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.types import UTCDateTime, utcnow

ENVIRONMENTS = ("simulator", "sandbox", "production")
TILL_TYPES = ("paybill", "till")


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def new_callback_token() -> str:
    return secrets.token_urlsafe(24)


class Shop(db.Model):
    """A branch: tills are grouped by shop; owners look at one shop or all."""

    __tablename__ = "shops"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    tills: Mapped[list[Till]] = relationship(back_populates="shop", order_by="Till.id")


#: Which cashiers may work at which till (the admin sets it on the till's page).
user_tills = Table(
    "user_tills",
    db.metadata,
    Column("user_id", ForeignKey("users.id"), primary_key=True),
    Column("till_id", ForeignKey("tills.id"), primary_key=True),
)


class Till(db.Model):
    __tablename__ = "tills"
    __table_args__ = (
        CheckConstraint(_one_of("till_type", TILL_TYPES), name="till_type"),
        CheckConstraint(_one_of("environment", ENVIRONMENTS), name="environment"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id"), index=True)
    name: Mapped[str] = mapped_column(String(80))
    #: set when an admin archived the till: no new sales; its payments and callbacks remain
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
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
    #: secret path segment of this till's callback URL; Daraja callbacks carry no signature
    callback_token: Mapped[str] = mapped_column(String(64), unique=True, default=new_callback_token)
    #: the token before the last rotation: pushes already sent carry it, so it is accepted
    #: until previous_token_until, then answered 403
    previous_callback_token: Mapped[str | None] = mapped_column(String(64), unique=True)
    previous_token_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: callbacks refused at this till's URL (address not allowed, too many): counted, not silent
    callbacks_refused: Mapped[int] = mapped_column(default=0, server_default="0")
    last_refused_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_refused_why: Mapped[str | None] = mapped_column(String(120))
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

    shop: Mapped[Shop] = relationship(back_populates="tills")
    cashiers = relationship("User", secondary=user_tills, order_by="User.username")

    @property
    def active(self) -> bool:
        return self.archived_at is None

    @property
    def transaction_type(self) -> str:
        return "CustomerBuyGoodsOnline" if self.till_type == "till" else "CustomerPayBillOnline"

    @property
    def party_b(self) -> str:
        return (self.till_number or "") if self.till_type == "till" else self.shortcode
