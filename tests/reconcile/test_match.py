"""Matching a statement with our payments: one test per outcome, and the same answer twice."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from app.reconcile.match import (
    WINDOW,
    Ambiguous,
    AmountDiffers,
    FailedOnStatement,
    Matched,
    MatchedByDetails,
    OurOrphan,
    OurPayment,
    OursOnly,
    Reconciliation,
    StatementOnly,
    covered_range,
    phone_consistent,
    reconcile,
)
from app.reconcile.statement import StatementLine, parse_statement

T0 = datetime(2026, 9, 3, 9, 0, tzinfo=UTC)  # 12:00 in Nairobi
PHONE = "254712345678"
MASKED = "2547****678"


def line(
    number: int,
    receipt: str,
    at: datetime = T0,
    *,
    paid_in: int = 100,
    withdrawn: int = 0,
    status: str = "Completed",
    details: str = "Pay Bill Online",
    phone: str | None = MASKED,
    linked: str | None = None,
) -> StatementLine:
    return StatementLine(
        line=number,
        receipt=receipt,
        completed_at=at,
        initiated_at=None,
        details=details,
        status=status,
        paid_in_cents=paid_in * 100,
        withdrawn_cents=withdrawn * 100,
        balance_cents=None,
        reason_type="",
        other_party=f"{phone} - ANN" if phone else "",
        phone_digits_visible=phone,
        party_name="ANN",
        linked_receipt=linked,
        account=None,
    )


def pay(
    pid: int,
    receipt: str | None,
    at: datetime | None = T0,
    *,
    amount: int = 100,
    status: str = "paid",
    phone: str = PHONE,
    created: datetime | None = None,
) -> OurPayment:
    return OurPayment(
        id=pid,
        till_id=1,
        amount_kes=amount,
        phone=phone,
        receipt=receipt,
        status=status,
        paid_at=at,
        created_at=created or (at or T0) - timedelta(seconds=30),
    )


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


# --- Phones ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("visible", "phone", "consistent"),
    [
        ("254712345678", "254712345678", True),
        ("254712345678", "254712345679", False),
        ("2547****678", "254712345678", True),
        ("2547****678", "254712345679", False),
        ("2547****678", "254112345678", False),
        ("2547*****126", "254700000126", True),
        ("254712***678", "254712345678", True),
        ("2547**23**78", "254712345678", True),
        ("2547**99**78", "254712345678", False),
        ("2547****678", "0712345678", True),
        ("2547****678", "+254712345678", True),
        ("25471234*5678", "254712345678", False),  # more visible digits than the number holds
        (None, "254712345678", False),
        ("2547****678", "", False),
    ],
)
def test_phone_consistent(visible, phone, consistent):
    assert phone_consistent(visible, phone) is consistent


# --- One test per outcome ------------------------------------------------------------------------


def test_matched_by_receipt_case_insensitively():
    result = reconcile([line(1, "QKR12XYZ9")], [pay(7, " qkr12xyz9 ")])
    assert result.matched == [Matched(line(1, "QKR12XYZ9"), pay(7, " qkr12xyz9 "))]
    assert result.ours_only == [] and result.statement_only == [] and result.ignored == 0


def test_matched_keeps_our_status_visible():
    # A receipt we hold on a payment we did not mark paid: the statement settles it.
    result = reconcile([line(1, "QKR1")], [pay(7, "QKR1", status="unknown")])
    assert [item.payment.status for item in result.matched] == ["unknown"]


def test_amount_differs():
    result = reconcile([line(1, "QKR1", paid_in=150)], [pay(7, "QKR1", amount=100)])
    assert result.amount_differs == [AmountDiffers(line(1, "QKR1", paid_in=150), pay(7, "QKR1"))]
    assert result.matched == [] and result.ours_only == []


def test_amount_with_cents_differs():
    statement_line = replace(line(1, "QKR1"), paid_in_cents=10050)
    result = reconcile([statement_line], [pay(7, "QKR1", amount=100)])
    assert [item.payment.id for item in result.amount_differs] == [7]


def test_matched_by_details_fills_the_receipt():
    paid_late = pay(7, None, T0 + minutes(2))
    result = reconcile([line(1, "QKR1")], [paid_late])
    assert result.matched_by_details == [MatchedByDetails(line(1, "QKR1"), paid_late, 120)]
    assert result.statement_only == [] and result.ours_only == []


def test_matched_by_details_uses_created_at_without_paid_at():
    payment = pay(7, None, None, created=T0 - minutes(9))
    result = reconcile([line(1, "QKR1")], [payment])
    assert [(m.payment.id, m.seconds_apart) for m in result.matched_by_details] == [(7, 540)]


@pytest.mark.parametrize(
    ("payment", "why"),
    [
        (pay(7, None, T0 + minutes(10) + timedelta(seconds=1)), "too late"),
        (pay(7, None, T0 - minutes(11)), "too early"),
        (pay(7, None, amount=101), "other amount"),
        (pay(7, None, phone="254712345679"), "other phone"),
        (pay(7, None, status="failed"), "not paid"),
        (pay(7, None, status="pending"), "not paid"),
    ],
)
def test_no_match_by_details(payment, why):
    result = reconcile([line(1, "QKR1")], [payment])
    assert result.matched_by_details == [], why
    assert [item.line.line for item in result.statement_only] == [1]


def test_no_match_by_details_without_a_visible_phone():
    result = reconcile([line(1, "QKR1", phone=None)], [pay(7, None)])
    assert result.matched_by_details == []


def test_exactly_ten_minutes_is_within_the_window():
    result = reconcile([line(1, "QKR1")], [pay(7, None, T0 + WINDOW)])
    assert [m.payment.id for m in result.matched_by_details] == [7]


def test_matched_by_details_prefers_the_closest_and_uses_each_once():
    lines = [line(1, "QKR1", T0), line(2, "QKR2", T0 + minutes(3))]
    payments = [pay(7, None, T0 + minutes(2)), pay(8, None, T0 + minutes(4))]
    result = reconcile(lines, payments)
    # 7 and 8 are both a minute from line 2: that tie is not guessed, and line 1, whose
    # closest payment is one of them, is left to a person too.
    assert result.matched_by_details == []
    assert [(a.line.line, [p.id for p in a.payments]) for a in result.ambiguous] == [
        (1, [7, 8]),
        (2, [7, 8]),
    ]
    assert result.ours_only == [] and result.statement_only == []


def test_closest_wins_when_there_is_no_tie():
    lines = [line(1, "QKR1", T0), line(2, "QKR2", T0 + minutes(3))]
    payments = [pay(7, None, T0 + minutes(1)), pay(8, None, T0 + minutes(4))]
    result = reconcile(lines, payments)
    assert [(m.line.line, m.payment.id) for m in result.matched_by_details] == [(1, 7), (2, 8)]
    assert result.ambiguous == []


def test_one_payment_two_lines_equally_close_is_ambiguous():
    lines = [line(1, "QKR1", T0 - minutes(1)), line(2, "QKR2", T0 + minutes(1))]
    result = reconcile(lines, [pay(7, None, T0)])
    assert result.matched_by_details == []
    assert [(a.line.line, [p.id for p in a.payments]) for a in result.ambiguous] == [
        (1, [7]),
        (2, [7]),
    ]
    assert result.ours_only == []  # left to a person, not raised as missing


def test_two_payments_one_line_equally_close_is_ambiguous():
    payments = [pay(7, None, T0 - minutes(1)), pay(8, None, T0 + minutes(1))]
    result = reconcile([line(1, "QKR1")], payments)
    assert result.ambiguous == [Ambiguous(line(1, "QKR1"), (payments[0], payments[1]))]
    assert result.statement_only == [] and result.ours_only == []


def test_an_exact_pair_is_not_spoiled_by_farther_ties():
    lines = [line(1, "QKR1", T0), line(2, "QKR2", T0 + minutes(30))]
    payments = [
        pay(7, None, T0 + minutes(30)),
        pay(8, None, T0 + minutes(31)),
        pay(9, None, T0 + minutes(29)),
    ]
    result = reconcile(lines, payments)
    # 8 and 9 are a minute from line 2, but 7 is at the same second: it wins outright.
    assert [(m.line.line, m.payment.id) for m in result.matched_by_details] == [(2, 7)]
    assert result.ambiguous == []
    assert [item.line.line for item in result.statement_only] == [1]  # nothing near it
    # 8 was paid after the statement's last line: outside what it covers.
    assert [item.payment.id for item in result.ours_only] == [9]


def test_failed_line_names_our_payment():
    failed = line(1, "QKR1", status="Failed")
    result = reconcile([failed], [pay(7, "QKR1")])
    assert result.failed_on_statement == [FailedOnStatement(failed, pay(7, "QKR1"))]
    assert result.matched == [] and result.ours_only == []


def test_failed_line_not_ours():
    failed = line(1, "QKR1", status="Failed")
    result = reconcile([failed], [])
    assert result.failed_on_statement == [FailedOnStatement(failed, None)]


def test_failed_charge_is_ignored():
    result = reconcile([line(1, "QKR1", status="Failed", details="Pay Bill Charge")], [])
    assert result.failed_on_statement == [] and result.ignored == 1


def test_reversal_of_our_receipt():
    original = line(1, "QKR1")
    reversal = line(2, "QKZ9", T0 + minutes(60), paid_in=0, withdrawn=100, linked="QKR1")
    result = reconcile([original, reversal], [pay(7, "qkr1")])
    assert [m.line.line for m in result.matched] == [1]
    assert result.failed_on_statement == [FailedOnStatement(reversal, pay(7, "qkr1"))]


def test_reversal_of_another_receipt_is_ignored():
    reversal = line(2, "QKZ9", paid_in=0, withdrawn=100, details="Reversal", linked="QKX1")
    result = reconcile([reversal], [pay(7, "QKR1", T0 - timedelta(days=3))])
    assert result.failed_on_statement == [] and result.ignored == 1


def test_statement_only_with_attach_candidates():
    incoming = line(1, "QKR1")
    ours = [
        pay(7, None, None, status="unknown", created=T0 - minutes(2)),
        pay(8, None, None, status="unconfirmed", created=T0 + minutes(1)),
        pay(9, None, None, status="unconfirmed", created=T0 + minutes(20)),  # too far
        pay(10, None, None, status="pending", created=T0),  # still open: not offered
        pay(11, None, None, status="failed", created=T0),
        pay(12, None, None, status="unknown", amount=99, created=T0),
        pay(13, None, None, status="unknown", phone="254799999999", created=T0),
        pay(14, "QKOTHER", None, status="unknown", created=T0),  # holds another receipt
    ]
    orphans = [
        OurOrphan(40, "qkr1", 100, MASKED, T0),
        OurOrphan(41, "QKR2", 100, MASKED, T0),
        OurOrphan(39, "QKR1", 100, None, T0),
    ]
    result = reconcile([incoming], ours, orphans)
    assert result.statement_only == [StatementOnly(incoming, (8, 7), (39, 40))]


def test_ours_only_within_the_lines_range():
    lines = [line(1, "QKR1", T0), line(2, "QKR2", T0 + timedelta(hours=5))]
    payments = [
        pay(1, "QKR1", T0),
        pay(2, "QKR2", T0 + timedelta(hours=5)),
        pay(3, "QKMISSING", T0 + timedelta(hours=1)),
        pay(4, None, T0 + timedelta(hours=2)),
        pay(5, "QKLATER", T0 + timedelta(hours=6)),  # after the statement's last line
        pay(6, "QKFAIL", T0 + timedelta(hours=1), status="failed"),
    ]
    result = reconcile(lines, payments)
    assert result.ours_only == [OursOnly(payments[2]), OursOnly(payments[3])]
    assert result.covered == (T0, T0 + timedelta(hours=5, seconds=1))


def test_ours_only_within_the_stated_period_as_nairobi_days():
    period = (date(2026, 9, 1), date(2026, 9, 30))
    payments = [
        pay(1, "QK1", datetime(2026, 8, 31, 20, 59, tzinfo=UTC)),  # 23:59 on 31 August
        pay(2, "QK2", datetime(2026, 8, 31, 21, 0, tzinfo=UTC)),  # 00:00 on 1 September
        pay(3, "QK3", datetime(2026, 9, 30, 20, 59, tzinfo=UTC)),  # 23:59 on 30 September
        pay(4, "QK4", datetime(2026, 9, 30, 21, 0, tzinfo=UTC)),  # 00:00 on 1 October
    ]
    result = reconcile([], payments, period=period)
    assert [item.payment.id for item in result.ours_only] == [2, 3]
    assert covered_range([], period) == (
        datetime(2026, 8, 31, 21, 0, tzinfo=UTC),
        datetime(2026, 9, 30, 21, 0, tzinfo=UTC),
    )


def test_empty_statement_without_period_raises_no_alarm():
    result = reconcile([], [pay(1, "QK1")])
    assert result == Reconciliation()


def test_ignored_lines_are_counted():
    lines = [
        line(1, "QKR1"),
        line(2, "QKR1", paid_in=0, withdrawn=15, details="Business Pay Bill Charge"),
        line(3, "QKS1", paid_in=0, withdrawn=4000, details="Organization Settle to Bank"),
        line(4, "QKS2", paid_in=0, withdrawn=50, details="Withdraw Funds to Bank"),
        line(5, "QKB1", paid_in=0, withdrawn=300, details="Business Payment to 2547****678"),
    ]
    result = reconcile(lines, [pay(7, "QKR1")])
    assert [m.line.line for m in result.matched] == [1]
    assert result.ignored == 4
    assert result.statement_only == [] and result.failed_on_statement == []


def test_naive_times_from_sqlite_are_utc():
    naive = replace(pay(7, None), paid_at=T0.replace(tzinfo=None) + minutes(1))
    naive = replace(naive, created_at=naive.created_at.replace(tzinfo=None))
    result = reconcile([line(1, "QKR1")], [naive])
    assert [m.payment.id for m in result.matched_by_details] == [7]


# --- Determinism and idempotence -----------------------------------------------------------------

CSV = """Organization Name:,ACME LTD
Time Period:,03-09-2026 - 03-09-2026
Paybill,556677
Receipt No.,Completion Time,Initiation Time,Details,Transaction Status,Paid In,Withdrawn,\
Balance,Balance Confirmed,Reason Type,Other Party Info,Linked Transaction ID,A/C No.
QKRV1,03-09-2026 18:00:00,,Reversal,Completed,,-300.00,,,Reversal,,QKR3,
QKR5,03-09-2026 17:00:00,,Pay Bill Online,Completed,500.00,,,,,2547****111 - E,,
QKR4,03-09-2026 16:00:00,,Pay Bill Online,Failed,400.00,,,,,2547****678 - D,,
QKR3,03-09-2026 15:00:00,,Pay Bill Online,Completed,300.00,,,,,2547****678 - C,,
QKR2,03-09-2026 14:00:00,,Pay Bill Online,Completed,"1,200.00",,,,,2547****678 - B,,
QKR2,03-09-2026 14:00:00,,Pay Bill Charge,Completed,,-15.00,,,,,,
qkr1,03-09-2026 13:00:00,,Pay Bill Online,Completed,100.00,,,,,2547****678 - A,,
QKS1,03-09-2026 19:00:00,,Organization Settle to Bank,Completed,,"1,000.00",,,,KCB BANK,,
"""


def _ours() -> list[OurPayment]:
    nairobi = timedelta(hours=3)
    day = datetime(2026, 9, 3, tzinfo=UTC) - nairobi
    return [
        pay(1, "QKR1", day + timedelta(hours=13)),  # matched
        pay(2, "QKR2", day + timedelta(hours=14), amount=1000),  # amount differs
        pay(3, "QKR3", day + timedelta(hours=15), amount=300),  # matched, then reversed
        pay(4, "QKR4", day + timedelta(hours=16), amount=400),  # failed on the statement
        pay(5, None, day + timedelta(hours=17, minutes=2), amount=500, phone="254700000111"),
        pay(6, None, None, amount=500, status="unknown", created=day + timedelta(hours=17)),
        pay(7, "QKGONE", day + timedelta(hours=12), amount=50),  # ours only
        pay(8, "QKPREV", day - timedelta(hours=1), amount=50),  # the day before: not listed
    ]


def _summary(result: Reconciliation) -> dict[str, object]:
    return {
        "matched": [(i.line.receipt, i.payment.id) for i in result.matched],
        "by_details": [(i.line.receipt, i.payment.id) for i in result.matched_by_details],
        "amount_differs": [(i.line.receipt, i.payment.id) for i in result.amount_differs],
        "failed": [
            (i.line.receipt, i.payment.id if i.payment else None)
            for i in result.failed_on_statement
        ],
        "statement_only": [(i.line.receipt, i.attach_payment_ids) for i in result.statement_only],
        "ambiguous": [(i.line.receipt, [p.id for p in i.payments]) for i in result.ambiguous],
        "ours_only": [i.payment.id for i in result.ours_only],
        "ignored": result.ignored,
    }


def test_a_whole_statement():
    statement = parse_statement(CSV.encode())
    result = reconcile(statement.lines, _ours(), period=statement.period)
    assert _summary(result) == {
        "matched": [("QKR3", 3), ("QKR1", 1)],
        "by_details": [("QKR5", 5)],
        "amount_differs": [("QKR2", 2)],
        "failed": [("QKRV1", 3), ("QKR4", 4)],
        "statement_only": [],
        "ambiguous": [],
        "ours_only": [7],
        "ignored": 2,
    }


def test_matching_twice_gives_the_same_answer_whatever_the_input_order():
    statement = parse_statement(CSV.encode())
    first = reconcile(statement.lines, _ours(), period=statement.period)
    assert reconcile(statement.lines, _ours(), period=statement.period) == first
    rng = random.Random(5)
    for _ in range(5):
        lines, ours = list(statement.lines), _ours()
        rng.shuffle(lines)
        rng.shuffle(ours)
        assert reconcile(lines, ours, period=statement.period) == first


def test_filling_the_receipts_found_then_matching_again():
    statement = parse_statement(CSV.encode())
    first = reconcile(statement.lines, _ours(), period=statement.period)
    filled = {item.payment.id: item.line.receipt for item in first.matched_by_details}
    ours = [replace(p, receipt=filled.get(p.id, p.receipt)) for p in _ours()]
    second = reconcile(statement.lines, ours, period=statement.period)
    assert second.matched_by_details == []
    assert sorted(i.payment.id for i in second.matched) == sorted(
        [i.payment.id for i in first.matched] + list(filled)
    )
    for name in ("amount_differs", "failed_on_statement", "statement_only", "ours_only"):
        assert getattr(second, name) == getattr(first, name)
    assert reconcile(statement.lines, ours, period=statement.period) == second
