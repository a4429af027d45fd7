"""Compare one statement's lines with our payments: what agrees, differs, or is missing."""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from itertools import groupby

from app.payments.states import RESOLVABLE_BY_HAND, Status
from app.reconcile.statement import StatementLine
from app.timeutil import nairobi_day_bounds

#: A statement's completion time and our paid_at (from the callback's TransactionDate, or the
#: query that confirmed it) differ by seconds; ten minutes leaves room for a late query.
WINDOW = timedelta(minutes=10)
_STARS = re.compile(r"\*+")


@dataclass(frozen=True, slots=True)
class OurPayment:
    """A payment of ours, as the matcher needs it (built by the caller from the database)."""

    id: int
    till_id: int
    amount_kes: int
    phone: str  # 2547XXXXXXXX
    receipt: str | None
    status: str  # a Status value: "paid", "failed", "unknown", "unconfirmed", "pending"…
    paid_at: datetime | None  # UTC
    created_at: datetime  # UTC

    @property
    def at(self) -> datetime:
        """When the money moved, as far as we know: paid_at, else when the sale was made."""
        return _aware(self.paid_at or self.created_at)


@dataclass(frozen=True, slots=True)
class OurOrphan:
    """A success callback that matched none of our payments."""

    id: int  # the raw callback's id
    receipt: str | None
    amount_kes: int | None
    phone: str | None  # full or masked, as the callback gave it
    received_at: datetime


@dataclass(frozen=True, slots=True)
class Matched:
    """Same receipt, same amount. `payment.status` may still say otherwise: the UI shows it."""

    line: StatementLine
    payment: OurPayment


@dataclass(frozen=True, slots=True)
class MatchedByDetails:
    """Our paid payment had no receipt; this line is it (amount, phone, time): fill in
    `line.receipt`."""

    line: StatementLine
    payment: OurPayment
    seconds_apart: int


@dataclass(frozen=True, slots=True)
class AmountDiffers:
    line: StatementLine
    payment: OurPayment


@dataclass(frozen=True, slots=True)
class FailedOnStatement:
    """A line that did not complete, or a reversal of one of our receipts; `payment` is ours
    when the line's receipt (or the receipt it reverses) is ours."""

    line: StatementLine
    payment: OurPayment | None


@dataclass(frozen=True, slots=True)
class StatementOnly:
    """Money in that none of our payments claims. The owner may attach it to one of
    `attach_payment_ids` (our unknown/unconfirmed payments of the same amount, phone and time,
    closest first) or `attach_orphan_ids` (orphan callbacks with this receipt)."""

    line: StatementLine
    attach_payment_ids: tuple[int, ...] = ()
    attach_orphan_ids: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Ambiguous:
    """A line that fits several of our receipt-less paid payments equally well: not guessed."""

    line: StatementLine
    payments: tuple[OurPayment, ...]


@dataclass(frozen=True, slots=True)
class OursOnly:
    """Paid here, within the statement's time, and not on it: the alarm list."""

    payment: OurPayment


@dataclass(slots=True)
class Reconciliation:
    matched: list[Matched] = field(default_factory=list)
    matched_by_details: list[MatchedByDetails] = field(default_factory=list)
    amount_differs: list[AmountDiffers] = field(default_factory=list)
    failed_on_statement: list[FailedOnStatement] = field(default_factory=list)
    statement_only: list[StatementOnly] = field(default_factory=list)
    ambiguous: list[Ambiguous] = field(default_factory=list)
    ours_only: list[OursOnly] = field(default_factory=list)
    #: charges, settlements, withdrawals and other lines that concern no payment of ours
    ignored: int = 0
    #: [start, end) in UTC that the statement covers; None for an empty statement without period
    covered: tuple[datetime, datetime] | None = None


def _aware(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; ours are UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _receipt(value: str | None) -> str:
    return (value or "").strip().upper()


def phone_consistent(visible: str | None, phone: str | None) -> bool:
    """Whether the statement's phone ("254712345678" or masked "2547****678") can be `phone`.

    A run of `*` hides one or more digits: masks seen do not keep the number's length."""
    if not visible or not phone:
        return False
    phone = phone.strip().lstrip("+")
    if phone.startswith("0"):
        phone = "254" + phone[1:]
    if "*" not in visible:
        return visible == phone
    parts = _STARS.split(visible)
    head, tail = parts[0], parts[-1]
    if len(head) + len(tail) + len(parts) - 1 > len(phone):
        return False
    if not (phone.startswith(head) and phone.endswith(tail)):
        return False
    position, limit = len(head), len(phone) - len(tail)
    for part in parts[1:-1]:
        found = phone.find(part, position + 1, limit - 1)
        if found < 0:
            return False
        position = found + len(part)
    return True


def covered_range(
    lines: Sequence[StatementLine], period: tuple[date, date] | None = None
) -> tuple[datetime, datetime] | None:
    """[start, end) in UTC: the stated period as Nairobi days, else first to last line."""
    if period is not None:
        return nairobi_day_bounds(period[0])[0], nairobi_day_bounds(period[1])[1]
    if not lines:
        return None
    times = [line.completed_at for line in lines]
    # Statement times have whole seconds: one second past the last line includes it.
    return min(times), max(times) + timedelta(seconds=1)


def reconcile(
    lines: Sequence[StatementLine],
    payments: Iterable[OurPayment],
    orphans: Iterable[OurOrphan] = (),
    *,
    period: tuple[date, date] | None = None,
) -> Reconciliation:
    """Compare the lines of one statement with the payments of the till it is for.

    `payments` should hold every payment of that till from a little before the statement's
    first day to a little after its last (a day either side is plenty); `period` is the
    statement's stated period, when its preamble had one."""
    result = Reconciliation(covered=covered_range(lines, period))
    ordered = sorted(lines, key=lambda line: line.line)
    ours = sorted(payments, key=lambda payment: payment.id)
    # One payment per receipt, and the rare second one apart: a list per receipt would be
    # 100,000 more objects for the garbage collector to walk, for nothing.
    by_receipt: dict[str, OurPayment] = {}
    also: dict[str, list[OurPayment]] = {}
    without_receipt: list[OurPayment] = []
    for payment in ours:
        key = _receipt(payment.receipt)
        if not key:
            without_receipt.append(payment)
        elif key in by_receipt:
            also.setdefault(key, []).append(payment)
        else:
            by_receipt[key] = payment

    def holding(receipt: str | None) -> list[OurPayment]:
        first = by_receipt.get(receipt or "")
        return [] if first is None else [first, *also.get(receipt or "", ())]

    orphan_ids: dict[str, list[int]] = {}
    for orphan in sorted(orphans, key=lambda orphan: orphan.id):
        key = _receipt(orphan.receipt)
        if key:
            orphan_ids.setdefault(key, []).append(orphan.id)

    named: set[int] = set()  # ids of our payments that some line accounts for
    unclaimed: list[StatementLine] = []  # money in with a receipt none of ours has
    ignored = 0
    for line in ordered:
        if line.is_charge_or_settlement:
            ignored += 1
            continue
        if line.is_reversal:
            reversed_ = holding(line.linked_receipt) or holding(line.receipt)
            if reversed_:
                for payment in reversed_:
                    result.failed_on_statement.append(FailedOnStatement(line, payment))
                    named.add(payment.id)
            else:
                ignored += 1
            continue
        same = holding(line.receipt)
        if same:
            for payment in same:
                named.add(payment.id)
                if not line.completed:
                    result.failed_on_statement.append(FailedOnStatement(line, payment))
                elif line.paid_in_cents == payment.amount_kes * 100:
                    result.matched.append(Matched(line, payment))
                else:
                    result.amount_differs.append(AmountDiffers(line, payment))
        elif not line.completed:
            result.failed_on_statement.append(FailedOnStatement(line, None))
        elif line.is_incoming_payment:
            unclaimed.append(line)
        else:
            ignored += 1

    paid_without_receipt = [p for p in without_receipt if p.status == Status.PAID]
    left, ambiguous = _match_by_details(unclaimed, paid_without_receipt, result)
    named.update(item.payment.id for item in result.matched_by_details)
    for item in ambiguous:
        named.update(payment.id for payment in item.payments)
    result.ambiguous = ambiguous

    open_ones = _Buckets(p for p in without_receipt if p.status in RESOLVABLE_BY_HAND)
    for line in left:
        candidates = open_ones.near(line)
        candidates.sort(key=lambda pair: (pair[0], pair[1].id))
        result.statement_only.append(
            StatementOnly(
                line,
                tuple(payment.id for _, payment in candidates),
                tuple(orphan_ids.get(line.receipt, ())),
            )
        )

    if result.covered is not None:
        start, end = result.covered
        alarms = [
            p for p in ours if p.status == Status.PAID and p.id not in named and start <= p.at < end
        ]
        alarms.sort(key=lambda payment: (payment.at, payment.id))
        result.ours_only = [OursOnly(payment) for payment in alarms]

    result.ignored = ignored
    result.matched_by_details.sort(key=_line_order)
    return result


def _line_order(item: MatchedByDetails) -> tuple[int, int]:
    return item.line.line, item.payment.id


class _Buckets:
    """Payments by amount (in cents), each bucket sorted by time, for window look-ups."""

    def __init__(self, payments: Iterable[OurPayment]) -> None:
        grouped: dict[int, list[tuple[datetime, int, OurPayment]]] = {}
        for payment in payments:
            grouped.setdefault(payment.amount_kes * 100, []).append(
                (payment.at, payment.id, payment)
            )
        self._times: dict[int, list[datetime]] = {}
        self._payments: dict[int, list[OurPayment]] = {}
        for cents, entries in grouped.items():
            entries.sort(key=lambda entry: (entry[0], entry[1]))
            self._times[cents] = [entry[0] for entry in entries]
            self._payments[cents] = [entry[2] for entry in entries]

    def near(self, line: StatementLine) -> list[tuple[int, OurPayment]]:
        """(seconds apart, payment) of the same amount, within WINDOW, with a phone the line's
        visible digits allow."""
        times = self._times.get(line.paid_in_cents)
        if not times:
            return []
        payments = self._payments[line.paid_in_cents]
        at = line.completed_at
        low = bisect.bisect_left(times, at - WINDOW)
        high = bisect.bisect_right(times, at + WINDOW)
        return [
            (abs(round((times[i] - at).total_seconds())), payments[i])
            for i in range(low, high)
            if phone_consistent(line.phone_digits_visible, payments[i].phone)
        ]


def _match_by_details(
    lines: list[StatementLine], payments: list[OurPayment], result: Reconciliation
) -> tuple[list[StatementLine], list[Ambiguous]]:
    """Pair receipt-less paid payments with unclaimed lines, closest time first.

    Where a line or a payment has two partners at the same distance, nothing tells them apart:
    all of them are left to a person, and so is anything that would pair with one of them
    later (it might be the one that belongs to the other)."""
    buckets = _Buckets(payments)
    pairs = [
        (seconds, line.line, payment.id, line, payment)
        for line in lines
        for seconds, payment in buckets.near(line)
    ]
    pairs.sort(key=lambda pair: pair[:3])
    matched_lines: set[int] = set()
    matched_payments: set[int] = set()
    blocked_lines: set[int] = set()
    blocked_payments: set[int] = set()
    for _seconds, group in groupby(pairs, key=lambda pair: pair[0]):
        live = [
            pair
            for pair in group
            if pair[1] not in matched_lines and pair[2] not in matched_payments
        ]
        clear = []
        for pair in live:
            if pair[1] in blocked_lines or pair[2] in blocked_payments:
                blocked_lines.add(pair[1])
                blocked_payments.add(pair[2])
            else:
                clear.append(pair)
        line_uses: dict[int, int] = {}
        payment_uses: dict[int, int] = {}
        for pair in clear:
            line_uses[pair[1]] = line_uses.get(pair[1], 0) + 1
            payment_uses[pair[2]] = payment_uses.get(pair[2], 0) + 1
        for seconds, line_no, payment_id, line, payment in clear:
            if line_uses[line_no] > 1 or payment_uses[payment_id] > 1:
                blocked_lines.add(line_no)
                blocked_payments.add(payment_id)
            else:
                matched_lines.add(line_no)
                matched_payments.add(payment_id)
                result.matched_by_details.append(MatchedByDetails(line, payment, seconds))
    candidates: dict[int, list[OurPayment]] = {}
    for _seconds, line_no, payment_id, _line, payment in pairs:
        if line_no in blocked_lines and payment_id in blocked_payments:
            candidates.setdefault(line_no, []).append(payment)
    ambiguous: list[Ambiguous] = []
    left: list[StatementLine] = []
    for line in lines:
        if line.line in blocked_lines:
            ambiguous.append(Ambiguous(line, tuple(candidates.get(line.line, ()))))
        elif line.line not in matched_lines:
            left.append(line)
    return left, ambiguous
