"""A closed day (Z report): its figures as they were at closing, who closed it, and when."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Date, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.types import UTCDateTime, utcnow


class DayClose(db.Model):
    """One Nairobi day of one till or one shop, closed once; never rewritten afterwards.

    What changes later (a late callback, a reconciliation) is shown against these figures as
    a post-close adjustment (app/reports/close.py), never folded into them.
    """

    __tablename__ = "day_closes"
    __table_args__ = (
        UniqueConstraint("scope", "day", name="uq_day_closes_scope_day"),
        CheckConstraint("(till_id IS NULL) <> (shop_id IS NULL)", name="one_till_or_one_shop"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: "till:<id>" or "shop:<id>": unique with the day, so a day closes once per scope
    scope: Mapped[str] = mapped_column(String(24))
    till_id: Mapped[int | None] = mapped_column(ForeignKey("tills.id"))
    shop_id: Mapped[int | None] = mapped_column(ForeignKey("shops.id"))
    day: Mapped[date] = mapped_column(Date)
    closed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    closed_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    #: the Z report's figures at closing (app/reports/close.py ZReport.as_figures)
    figures: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: payment id (as text) → the closer's explanation for a row still open at closing
    explanations: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)

    closed_by = relationship("User")
    till = relationship("Till")
    shop = relationship("Shop")
