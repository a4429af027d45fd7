"""Time reading a 100,000-line M-PESA statement and matching it against 100,000 payments."""

from __future__ import annotations

import argparse
import random
import statistics
import time
from datetime import UTC, datetime, timedelta

from app.reconcile.match import OurOrphan, OurPayment, reconcile
from app.reconcile.statement import parse_statement

HEADER = (
    "Receipt No.,Completion Time,Initiation Time,Details,Transaction Status,Paid In,"
    "Withdrawn,Balance,Balance Confirmed,Reason Type,Other Party Info,Linked Transaction ID,"
    "A/C No."
)
#: the goals of the issue, in seconds
PARSE_GOAL = 3.0
MATCH_GOAL = 2.0
_NAIROBI = timedelta(hours=3)
_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"


def _receipt(rng: random.Random, taken: set[str]) -> str:
    while True:
        receipt = "T" + "".join(rng.choices(_LETTERS, k=9))
        if receipt not in taken:
            taken.add(receipt)
            return receipt


def build(
    lines: int, payments: int, seed: int = 7
) -> tuple[bytes, list[OurPayment], list[OurOrphan]]:
    """A statement of `lines` lines (newest first, with quoted amounts, charges and a few
    failed and reversed lines) and `payments` payments of ours, most of them on it."""
    rng = random.Random(seed)
    taken: set[str] = set()
    start = datetime(2026, 9, 1, 4, 0, tzinfo=UTC)  # 07:00 in Nairobi
    step = timedelta(days=30) / max(lines, 1)
    rows: list[str] = []
    ours: list[OurPayment] = []
    orphans: list[OurOrphan] = []
    balance = 0
    payment_id = 0
    for index in range(lines):
        at = start + step * index
        local = (at + _NAIROBI).strftime("%Y-%m-%d %H:%M:%S")
        phone = f"2547{rng.randrange(10**8):08d}"
        masked = phone[:4] + "****" + phone[-3:]
        amount = rng.randrange(10, 5000)
        receipt = _receipt(rng, taken)
        kind = rng.random()
        if kind < 0.04:  # a fee, on the receipt of the line before
            balance -= 1500
            rows.append(
                f"{rows[-1].split(',', 1)[0] if rows else receipt},{local},,Pay Bill Charge,"
                f'Completed,,-15.00,"{balance / 100:,.2f}",true,Business Pay Bill Charge,,,'
            )
            continue
        status = "Failed" if kind < 0.05 else "Completed"
        if status == "Completed":
            balance += amount * 100
        rows.append(
            f"{receipt},{local},{local},Pay Bill Online,{status},"
            f'"{amount:,}.00",,"{balance / 100:,.2f}",true,Pay Bill Online,'
            f"{masked} - CUSTOMER {index},,R-{index:06d}"
        )
        if payment_id >= payments:
            continue
        payment_id += 1
        roll = rng.random()
        if roll < 0.90:  # paid, callback stored the receipt
            ours.append(
                OurPayment(
                    payment_id, 1, amount, phone, receipt, "paid", at, at - timedelta(seconds=20)
                )
            )
        elif roll < 0.95:  # paid by query: no receipt
            seen = at + timedelta(seconds=rng.randrange(-90, 90))
            ours.append(OurPayment(payment_id, 1, amount, phone, None, "paid", seen, seen))
        elif roll < 0.98:  # left unknown; an orphan callback holds the receipt
            ours.append(OurPayment(payment_id, 1, amount, phone, None, "unknown", None, at))
            orphans.append(OurOrphan(payment_id, receipt, amount, masked, at))
        else:  # a different amount on our side
            ours.append(OurPayment(payment_id, 1, amount + 1, phone, receipt, "paid", at, at))
    while payment_id < payments:  # paid here, never on the statement: the alarm list
        payment_id += 1
        at = start + timedelta(seconds=rng.randrange(30 * 86400))
        phone = f"2547{rng.randrange(10**8):08d}"
        receipt = _receipt(rng, taken)
        ours.append(OurPayment(payment_id, 1, 100, phone, receipt, "paid", at, at))
    rows.reverse()  # newest first, as some exports list them
    preamble = (
        "Organization Name:,BENCH LTD\nTime Period:,01-09-2026 - 30-09-2026\nPaybill,556677\n,\n"
    )
    data = (preamble + HEADER + "\n" + "\n".join(rows) + "\n").encode()
    return data, ours, orphans


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--payments", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    began = time.perf_counter()
    data, payments, orphans = build(args.lines, args.payments)
    print(
        f"built {args.lines:,} lines ({len(data) / 1024 / 1024:.1f} MB) and "
        f"{len(payments):,} payments in {time.perf_counter() - began:.1f} s"
    )
    parse_times, match_times = [], []
    for _ in range(args.runs):
        began = time.perf_counter()
        statement = parse_statement(data, filename="bench.csv", shortcode="556677")
        parse_times.append(time.perf_counter() - began)
        began = time.perf_counter()
        result = reconcile(statement.lines, payments, orphans, period=statement.period)
        match_times.append(time.perf_counter() - began)
    parse, match = statistics.median(parse_times), statistics.median(match_times)
    print(f"parse: median {parse:.3f} s of {args.runs} (goal {PARSE_GOAL} s)")
    print(f"match: median {match:.3f} s of {args.runs} (goal {MATCH_GOAL} s)")
    print(
        f"lines {len(statement.lines):,}: matched {len(result.matched):,}, "
        f"by details {len(result.matched_by_details):,}, "
        f"amount differs {len(result.amount_differs):,}, "
        f"failed {len(result.failed_on_statement):,}, "
        f"statement only {len(result.statement_only):,} "
        f"({sum(1 for item in result.statement_only if item.attach_orphan_ids):,} with an orphan), "
        f"ambiguous {len(result.ambiguous):,}, ignored {result.ignored:,}; "
        f"ours only {len(result.ours_only):,}"
    )


if __name__ == "__main__":
    main()
