"""Every payment, findable: filters over any period, keyset pages, and a streamed CSV export."""

from __future__ import annotations

import base64
import binascii
import csv
import io
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import ColumnElement, Select, and_, exists, func, or_, select
from sqlalchemy.orm import joinedload

from app.cashier.today import search_clause
from app.extensions import db
from app.models import Payment, PaymentEvent, StatementEntry, StatementUpload, Till, User
from app.payments.rules import InputError, normalise_phone
from app.payments.states import OPEN, Source, Status
from app.reports.flags import BY_HAND_KINDS, Flag, flags_for
from app.reports.periods import Period, nairobi_day
from app.reports.takings import Scope, day_summaries
from app.timeutil import to_nairobi

PAGE_SIZE = 50
#: the status filter's value for "not final yet" (initiating, pending, unknown, unconfirmed)
OPEN_STATUSES = "open"
STATUS_CHOICES = frozenset({OPEN_STATUSES, *(s.value for s in Status)})
#: rows fetched per round trip while exporting: memory stays flat whatever the total
EXPORT_BATCH = 2000
_TEXT_MAX = 64


@dataclass(frozen=True)
class Filters:
    """What the owner asked the list for; every field optional."""

    period: Period
    scope: Scope = field(default_factory=Scope)
    #: a Status, or OPEN_STATUSES for every status that is not final
    status: str | None = None
    flag: Flag | None = None
    amount_min: int | None = None
    amount_max: int | None = None
    phone: str = ""
    receipt: str = ""
    reference: str = ""
    q: str = ""

    def query_args(self) -> dict[str, str]:
        """The filters as query-string arguments (for links to the next page and the CSV)."""
        args = {
            "from": self.period.start.isoformat(),
            "to": self.period.end.isoformat(),
            "shop": self.scope.shop_id,
            "till": self.scope.till_id,
            "cashier": self.scope.cashier_id,
            "status": self.status,
            "flag": self.flag,
            "amount_min": self.amount_min,
            "amount_max": self.amount_max,
            "phone": self.phone,
            "receipt": self.receipt,
            "reference": self.reference,
            "q": self.q,
        }
        return {k: str(v) for k, v in args.items() if v not in (None, "")}

    def args_without_period(self) -> dict[str, str]:
        """The other filters, kept when a preset period is picked."""
        return {k: v for k, v in self.query_args().items() if k not in ("from", "to")}


def parse_id(value: str | None) -> int | None:
    """A row id typed or passed in a URL; None for anything else."""
    text = (value or "").strip().lstrip("#")
    return int(text) if re.fullmatch(r"[0-9]{1,9}", text) else None


def _id(args: Mapping[str, str], name: str) -> int | None:
    return parse_id(args.get(name))


def _kes(args: Mapping[str, str], name: str) -> int | None:
    text = re.sub(r"[\s,]", "", args.get(name) or "")
    return int(text) if re.fullmatch(r"[0-9]{1,9}", text) else None


def _text(args: Mapping[str, str], name: str) -> str:
    return " ".join((args.get(name) or "").split())[:_TEXT_MAX]


def read_filters(args: Mapping[str, str], period: Period) -> Filters:
    """The filters in a query string; a value that cannot be understood is ignored, never fatal."""
    status = args.get("status") or None
    if status not in STATUS_CHOICES:
        status = None
    try:
        flag = Flag(args.get("flag") or "")
    except ValueError:
        flag = None
    return Filters(
        period=period,
        scope=Scope(_id(args, "shop"), _id(args, "till"), _id(args, "cashier")),
        status=status,
        flag=flag,
        amount_min=_kes(args, "amount_min"),
        amount_max=_kes(args, "amount_max"),
        phone=_text(args, "phone"),
        receipt=_text(args, "receipt"),
        reference=_text(args, "reference"),
        q=_text(args, "q"),
    )


def flag_clause(flag: Flag) -> ColumnElement[bool]:
    """SQL for "this payment carries `flag`" (the same rules as app/reports/flags.py)."""
    if flag is Flag.CONFLICT:
        return exists().where(PaymentEvent.payment_id == Payment.id, PaymentEvent.conflict)
    if flag is Flag.PAID_AFTER_CANCEL:
        return and_(Payment.status == Status.PAID, Payment.cancelled_at.is_not(None))
    if flag is Flag.RECEIPT_PENDING:
        return and_(Payment.status == Status.PAID, Payment.receipt_number.is_(None))
    if flag is Flag.NOT_ON_STATEMENT:
        paid_day = nairobi_day(Payment.final_at)
        return and_(
            Payment.status == Status.PAID,
            exists().where(
                StatementUpload.till_id == Payment.till_id,
                StatementUpload.first_day <= paid_day,
                StatementUpload.last_day >= paid_day,
            ),
            ~exists().where(
                StatementEntry.till_id == Payment.till_id,
                StatementEntry.receipt == Payment.receipt_number,
            ),
        )
    return exists().where(
        PaymentEvent.payment_id == Payment.id,
        PaymentEvent.source == Source.MANUAL,
        PaymentEvent.kind.in_(BY_HAND_KINDS),
    )


def _never() -> ColumnElement[bool]:
    return Payment.id.is_(None)  # the primary key is never NULL


def _where(f: Filters) -> list[ColumnElement[bool]]:
    start, end = f.period.utc_bounds()
    where: list[ColumnElement[bool]] = [
        Payment.created_at >= start,
        Payment.created_at < end,
        f.scope.payments(),
    ]
    if f.status == OPEN_STATUSES:
        where.append(Payment.status.in_(OPEN))
    elif f.status is not None:
        where.append(Payment.status == f.status)
    if f.flag is not None:
        where.append(flag_clause(f.flag))
    if f.amount_min is not None:
        where.append(Payment.amount_kes >= f.amount_min)
    if f.amount_max is not None:
        where.append(Payment.amount_kes <= f.amount_max)
    if f.phone:
        digits = re.sub(r"[\s\-+]", "", f.phone)
        try:
            where.append(Payment.phone == normalise_phone(digits, allow_ported=True))
        except InputError:
            where.append(
                Payment.phone.endswith(digits)
                if digits.isdigit() and digits.isascii()
                else _never()
            )
    if f.receipt:
        where.append(Payment.receipt_number == f.receipt.upper())
    if f.reference:
        where.append(
            or_(
                func.upper(Payment.account_reference) == f.reference.upper(),
                Payment.sale_ref == f.reference.lower(),
            )
        )
    if f.q:
        clauses = [func.upper(Payment.account_reference) == f.q.upper()]
        found = search_clause(f.q)
        if found is not None:
            clauses.append(found)
        where.append(or_(*clauses))
    return where


def _select(f: Filters) -> Select:
    return select(Payment).where(*_where(f))


# --- Keyset pages --------------------------------------------------------------------------
# Newest first by (created_at, id): page 500 is one index seek, like page 1 (no OFFSET).


def encode_cursor(p: Payment) -> str:
    text = f"{p.created_at.isoformat()}|{p.id}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> tuple[datetime, int] | None:
    """The (created_at, id) a page starts after; None for the first page or a bad cursor."""
    if not cursor or len(cursor) > 100:
        return None
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, _, raw_id = text.partition("|")
        at = datetime.fromisoformat(stamp)
        if at.tzinfo is None or not raw_id.isdigit() or len(raw_id) > 18:
            return None
        return at, int(raw_id)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None


@dataclass(frozen=True)
class Page:
    payments: list[Payment]
    flags: dict[int, list[Flag]]
    #: the cursor of the next page, or None on the last one
    next_cursor: str | None


def _after(position: tuple[datetime, int]) -> ColumnElement[bool]:
    at, last_id = position
    return or_(Payment.created_at < at, and_(Payment.created_at == at, Payment.id < last_id))


def page(f: Filters, cursor: str | None = None, size: int = PAGE_SIZE) -> Page:
    query = _select(f).options(joinedload(Payment.till), joinedload(Payment.cashier))
    position = decode_cursor(cursor)
    if position is not None:
        query = query.where(_after(position))
    rows = list(
        db.session.execute(
            query.order_by(Payment.created_at.desc(), Payment.id.desc()).limit(size + 1)
        ).scalars()
    )
    more = len(rows) > size
    rows = rows[:size]
    return Page(rows, flags_for(rows), encode_cursor(rows[-1]) if more and rows else None)


# --- CSV -----------------------------------------------------------------------------------

CSV_COLUMNS = (
    "payment_id",
    "started_nairobi",
    "paid_nairobi",
    "status",
    "amount_kes",
    "phone",
    "receipt",
    "reference",
    "shop",
    "till",
    "cashier",
    "result_code",
    "flags",
)
#: Excel needs the BOM to read UTF-8 (names with accents, Swahili text)
BOM = "\ufeff"
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: object) -> str:
    """A CSV cell that a spreadsheet will not run as a formula (names and references are typed
    by people, and a till name such as "=HYPERLINK(…)" must stay text)."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def _stamp(value: datetime | None) -> str:
    return to_nairobi(value).strftime("%Y-%m-%d %H:%M:%S") if value else ""


def _line(values: list[object]) -> str:
    out = io.StringIO()
    csv.writer(out).writerow(values)
    return out.getvalue()


def export_rows(f: Filters) -> Iterator[str]:
    """The filtered list as CSV text, a batch at a time (keyset again: no server cursor, so it
    works the same on SQLite and PostgreSQL, and memory stays flat for a million rows)."""
    yield BOM + _line(list(CSV_COLUMNS))
    tills = {
        t.id: t for t in db.session.execute(select(Till).options(joinedload(Till.shop))).scalars()
    }
    names: dict[int, str] = {
        uid: name for uid, name in db.session.execute(select(User.id, User.username))
    }
    position: tuple[datetime, int] | None = None
    while True:
        query = _select(f)
        if position is not None:
            query = query.where(_after(position))
        batch = list(
            db.session.execute(
                query.order_by(Payment.created_at.desc(), Payment.id.desc()).limit(EXPORT_BATCH)
            ).scalars()
        )
        if not batch:
            return
        flags = flags_for(batch)
        out = io.StringIO()
        writer = csv.writer(out)
        for p in batch:
            till = tills.get(p.till_id)
            writer.writerow(
                [
                    p.id,
                    _stamp(p.created_at),
                    _stamp(p.final_at) if p.status == Status.PAID else "",
                    p.status,
                    p.amount_kes,
                    p.phone,
                    p.receipt_number or "",
                    _cell(p.account_reference),
                    _cell(till.shop.name if till and till.shop else ""),
                    _cell(till.name if till else ""),
                    _cell(names.get(p.cashier_id, "") if p.cashier_id else ""),
                    p.result_code or "",
                    " ".join(flags.get(p.id, [])),
                ]
            )
        yield out.getvalue()
        position = (batch[-1].created_at, batch[-1].id)
        # Each batch leaves the session: a million rows must not pile up in its identity map.
        db.session.expunge_all()


def day_summary_rows(f: Filters) -> Iterator[str]:
    """One line per Nairobi day for the accountant (the list's period and shop/till/cashier)."""
    yield BOM + _line(
        ["day", "paid_count", "paid_kes", "sent", "failed", "unresolved", "received_not_linked_kes"]
    )
    for d in day_summaries(f.period, f.scope):
        yield _line(
            [
                d.day.isoformat(),
                d.paid_count,
                d.paid_kes,
                d.sent,
                d.failed,
                d.unresolved,
                d.orphan_kes,
            ]
        )
