"""Time the owner's back office on a million payments: takings, list pages, export, statement."""

from __future__ import annotations

import argparse
import csv
import io
import json
import resource
import secrets
import subprocess
import sys
import time
from datetime import date, timedelta

import sqlalchemy as sa
from werkzeug.security import generate_password_hash

from app.extensions import db
from app.models import Payment, Till, User
from app.models.statement import StatementEntry, StatementUpload
from app.reports import listing
from app.reports.periods import Period
from app.statements import reconcile_till, upload
from app.timeutil import to_nairobi, today_nairobi
from bench.counter import (
    Case,
    Recorder,
    StatementStats,
    _logged_in,
    measure,
    plan_verdicts,
    prepare_database,
    print_results,
    print_statements,
)
from bench.seed import bench_app, bench_url, drop_database

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/pesadesk_bench_backoffice"
OWNER = "owner"
#: the issue's goals: server time in ms, export memory in MB, statement seconds
TAKINGS_DAY_GOAL_MS = 50.0
TAKINGS_30_DAYS_GOAL_MS = 200.0
LIST_PAGE_GOAL_MS = 200.0
EXPORT_RSS_GOAL_MB = 150.0
STATEMENT_GOAL_S = 10.0
#: the list page that must be as fast as the first
FAR_PAGE = 500
STATEMENT_LINES = 100_000


def _last_day() -> date:
    """The last Nairobi day the seed filled (the days before today)."""
    return today_nairobi() - timedelta(days=1)


def _cursor_of_page(f: listing.Filters, page_number: int) -> str:
    """The `after` cursor that opens page `page_number` (walked, not measured)."""
    cursor = None
    for _ in range(page_number - 1):
        cursor = listing.page(f, cursor).next_cursor
        if cursor is None:
            raise SystemExit(f"fewer than {page_number} pages of payments")
        db.session.expunge_all()
    assert cursor is not None
    return cursor


def measure_pages(app, engine, password: str, args: argparse.Namespace) -> None:
    last = _last_day()
    first = last - timedelta(days=args.days - 1)
    with app.app_context():
        everything = listing.Filters(Period(first, last))
        far = _cursor_of_page(everything, FAR_PAGE)
    span = f"from={first}&to={last}"
    cases = [
        Case(
            "day",
            "takings, one day  GET /owner/takings",
            OWNER,
            f"/owner/takings?from={last}&to={last}",
            goal_ms=TAKINGS_DAY_GOAL_MS,
        ),
        Case(
            "30d",
            "takings, 30 days",
            OWNER,
            f"/owner/takings?from={last - timedelta(days=29)}&to={last}",
            goal_ms=TAKINGS_30_DAYS_GOAL_MS,
        ),
        Case(
            "list1",
            f"payments, {args.days} days, page 1",
            OWNER,
            f"/owner/payments?{span}",
            goal_ms=LIST_PAGE_GOAL_MS,
        ),
        Case(
            "list500",
            f"payments, {args.days} days, page {FAR_PAGE}",
            OWNER,
            f"/owner/payments?{span}&after={far}",
            goal_ms=LIST_PAGE_GOAL_MS,
        ),
        Case(
            "search",
            "payments, search by phone tail",
            OWNER,
            f"/owner/payments?{span}&q=0017",
            goal_ms=LIST_PAGE_GOAL_MS,
        ),
        Case(
            "day-csv",
            "a line per day, 30 days  GET /owner/takings.csv",
            OWNER,
            f"/owner/takings.csv?from={last - timedelta(days=29)}&to={last}",
        ),  # fmt: skip
    ]
    client = _logged_in(app, OWNER, password)
    recorder = Recorder(engine)
    statements: dict[str, StatementStats] = {}
    results = [
        measure(case, client, recorder, runs=args.runs, warmup=2, statements=statements)
        for case in cases
    ]
    print_results(results)
    print_statements(statements, plan_verdicts(engine, statements))


def measure_export(url: sa.URL, password: str, days: int) -> None:
    """The whole CSV in a fresh process, so its peak RSS is the export's own."""
    child = subprocess.run(  # noqa: S603 - this very script, with the bench's own URL
        [sys.executable, "-m", "bench.backoffice", "--export-child", "--url",
         url.render_as_string(hide_password=False), "--password", password, "--days", str(days)],
        capture_output=True, text=True, check=False, timeout=3600,
    )  # fmt: skip
    if child.returncode != 0:
        raise SystemExit(f"export child failed:\n{child.stderr[-3000:]}")
    figures = json.loads(child.stdout.strip().splitlines()[-1])
    met = "yes" if figures["peak_rss_mb"] <= EXPORT_RSS_GOAL_MB else "NO"
    print()
    print(
        f"CSV export of {figures['rows']:,} payments: {figures['seconds']:.1f} s,"
        f" {figures['mb']:.0f} MB of CSV, peak RSS {figures['peak_rss_mb']:.0f} MB"
        f" (before the request: {figures['rss_before_mb']:.0f} MB)"
        f"  goal <= {EXPORT_RSS_GOAL_MB:g} MB: {met}"
    )


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes


def export_child(url: sa.URL, password: str, days: int) -> None:
    app = bench_app(url)
    last = _last_day()
    first = last - timedelta(days=days - 1)
    client = _logged_in(app, OWNER, password)
    before = _rss_mb()
    started = time.perf_counter()
    response = client.get(f"/owner/payments.csv?from={first}&to={last}", buffered=False)
    rows, size = -1, 0  # the header line is not a payment
    for chunk in response.response:
        text = chunk.decode() if isinstance(chunk, bytes) else chunk
        size += len(text)
        rows += text.count("\n")
    response.close()
    print(
        json.dumps(
            {
                "rows": rows,
                "mb": size / 1024 / 1024,
                "seconds": time.perf_counter() - started,
                "rss_before_mb": before,
                "peak_rss_mb": _rss_mb(),
            }
        )
    )


def _statement_csv(payments: list[Payment], shortcode: str) -> bytes:
    """A portal-style statement holding these paid payments, oldest first."""
    out = io.StringIO()
    out.write(f"Organization Name:,PESADESK BENCH\nPaybill,{shortcode}\n")
    writer = csv.writer(out)
    writer.writerow(
        ["Receipt No.", "Completion Time", "Initiation Time", "Details", "Transaction Status",
         "Paid In", "Withdrawn", "Balance", "Balance Confirmed", "Reason Type",
         "Other Party Info", "Linked Transaction ID", "A/C No."]
    )  # fmt: skip
    for p in payments:
        at = to_nairobi(p.final_at).strftime("%Y-%m-%d %H:%M:%S")  # type: ignore[union-attr]
        masked = f"{p.phone[:4]}****{p.phone[-3:]}"
        writer.writerow(
            [p.receipt_number, at, "", "Pay Bill Online", "Completed", f"{p.amount_kes:,.2f}",
             "", "", "true", "Pay Bill Online", f"{masked} - CUSTOMER", "", "Sale"]
        )  # fmt: skip
    return out.getvalue().encode()


def measure_statement(app) -> None:
    with app.app_context():
        till = db.session.execute(sa.select(Till).order_by(Till.id)).scalars().first()
        owner = db.session.execute(sa.select(User).where(User.username == OWNER)).scalar_one()
        till_id, owner_id = till.id, owner.id
        db.session.execute(sa.delete(StatementEntry))
        db.session.execute(sa.delete(StatementUpload))
        db.session.commit()
        payments = list(
            db.session.execute(
                sa.select(Payment)
                .where(Payment.till_id == till.id, Payment.status == "paid")
                .order_by(Payment.final_at.desc())
                .limit(STATEMENT_LINES)
            ).scalars()
        )
        payments.reverse()
        data = _statement_csv(payments, till.shortcode)
        days = Period(
            to_nairobi(payments[0].final_at).date(),  # type: ignore[union-attr]
            to_nairobi(payments[-1].final_at).date(),  # type: ignore[union-attr]
        )
        db.session.expunge_all()  # the 100,000 payments read above
        till, owner = db.session.get(Till, till_id), db.session.get(User, owner_id)
        started = time.perf_counter()
        stored = upload(till, data, "bench-statement.csv", owner)
        upload_s = time.perf_counter() - started
        started = time.perf_counter()
        again = upload(till, data, "bench-statement.csv", owner)
        again_s = time.perf_counter() - started
        started = time.perf_counter()
        result = reconcile_till(till, days).result
        page_s = time.perf_counter() - started
        met = "yes" if upload_s <= STATEMENT_GOAL_S else "NO"
        print()
        print(
            f"statement of {len(payments):,} lines ({len(data) / 1024 / 1024:.1f} MB, {days.days}"
            f" days): upload (parse, store, match, fill receipts) {upload_s:.1f} s"
            f"  goal <= {STATEMENT_GOAL_S:g} s: {met}"
        )
        print(
            f"  stored {stored.new_lines:,} lines; the same file again: {again_s:.2f} s"
            f" (already={again.already}); the reconciliation page's matching: {page_s:.1f} s"
            f" (matched {len(result.matched):,}, paid here but not on it"
            f" {len(result.ours_only):,}, on it only {len(result.statement_only):,})"
        )
        db.session.execute(sa.delete(StatementEntry))
        db.session.execute(sa.delete(StatementUpload))
        db.session.commit()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.backoffice", description=__doc__)
    parser.add_argument("--payments", type=int, default=1_000_000)
    parser.add_argument("--keep", action="store_true", help="reuse the database and keep it")
    parser.add_argument("--url", default=DEFAULT_URL, help="a pesadesk_bench_* database")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--days", type=int, default=91, help="the list's and export's period")
    parser.add_argument("--export-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--password", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    url = bench_url(args.url)
    if args.export_child:
        export_child(url, args.password, args.days)
        return
    prepare_database(url, args.payments, keep=args.keep)
    try:
        app = bench_app(url)
        password = secrets.token_urlsafe(12)
        with app.app_context():
            owner = db.session.execute(sa.select(User).where(User.username == OWNER)).scalar_one()
            # A cheap hash for the bench's own logins: scrypt's 32 MB work area would otherwise
            # be the export process's peak, not the export.
            owner.password_hash = generate_password_hash(password, "pbkdf2:sha256:1000")
            db.session.commit()
            engine = db.engine
        measure_pages(app, engine, password, args)
        measure_export(url, password, args.days)
        measure_statement(app)
        engine.dispose()
    finally:
        if not args.keep:
            drop_database(url)


if __name__ == "__main__":
    main()
