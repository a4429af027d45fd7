"""Time the counter, its live-row polls and the owner's report against a million payments."""

from __future__ import annotations

import argparse
import math
import random
import secrets
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from app.extensions import db
from app.models import Payment, PaymentEvent, Till, User
from app.models.types import utcnow
from app.timeutil import nairobi_day_bounds, today_nairobi
from bench.seed import (
    CASHIERS,
    INSERT_EVENTS,
    bench_app,
    bench_url,
    drop_database,
    seed,
    seeded_payments,
    sync_indexes,
)
from tests.support.explain import compact, explain, explainable, plan_nodes, scan_problems

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/pesadesk_bench_counter"
#: the issue's goals, in milliseconds of server time
COUNTER_GOAL_MS = 150.0
POLL_GOAL_MS = 10.0
#: a request must not read the whole of a table larger than this
BIG_TABLE_ROWS = 10_000
#: mark the rows this bench adds today (the cashier's, the rest of the shop's), so that a
#: --keep run replaces them
TODAY_KEY = "bench-today"
SHOP_KEY = "bench-shop"
#: the other cashiers' sales so far today: about three quarters of a day at bench.seed's rate
SHOP_TODAY = 8_000
#: the cashier who works the counter here (the demo's), and the owner who reads the report
CASHIER = CASHIERS[0]
OWNER = "owner"
# The rest of the shop today: the other cashiers' latest sales from the history, copied with
# new unique values and squeezed into today between :start and :start + :width seconds.
INSERT_SHOP_TODAY = """
WITH src AS (
    SELECT * FROM payments
    WHERE created_at < :before AND cashier_id <> :cashier_id
    ORDER BY id DESC
    LIMIT :rows
), span AS (
    SELECT min(created_at) AS lo, greatest(extract(epoch FROM max(created_at) - min(created_at)), 1)
        AS seconds
    FROM src
)
INSERT INTO payments (
    till_id, cashier_id, idempotency_key, sale_ref, cancelled_at, cancelled_by_id, phone,
    amount_kes, account_reference, transaction_desc, status, merchant_request_id,
    checkout_request_id, result_code, result_desc, push_error_code, push_error_message,
    receipt_number, mpesa_transaction_date, created_at, updated_at, pushed_at, final_at,
    query_count, version
)
SELECT
    p.till_id, p.cashier_id, p.cashier_id || ':' || :key || '-' || p.id, md5(:key || p.sale_ref),
    p.cancelled_at + t.shift, p.cancelled_by_id, p.phone, p.amount_kes, p.account_reference,
    p.transaction_desc, p.status, p.merchant_request_id,
    CASE WHEN p.checkout_request_id IS NOT NULL THEN 'ws_CO_SHOP' || p.id END,
    p.result_code, p.result_desc, p.push_error_code, p.push_error_message,
    CASE WHEN p.receipt_number IS NOT NULL THEN 'BS' || p.id END,
    p.mpesa_transaction_date, p.created_at + t.shift, p.updated_at + t.shift,
    p.pushed_at + t.shift, p.final_at + t.shift, p.query_count, p.version
FROM src AS p
CROSS JOIN span
CROSS JOIN LATERAL (
    SELECT CAST(:start AS timestamptz)
        + make_interval(secs => extract(epoch FROM p.created_at - span.lo) / span.seconds
            * :width)
        - p.created_at AS shift
) AS t
ORDER BY p.id
RETURNING id
"""


@dataclass(frozen=True)
class Case:
    key: str
    label: str
    who: str  # which logged-in user asks: CASHIER or OWNER
    path: str
    htmx: bool = False
    goal_ms: float | None = None
    #: fewer runs for a slow page with no goal (None: the --runs given)
    runs: int | None = None


@dataclass(frozen=True)
class Executed:
    statement: str
    parameters: Any
    seconds: float


@dataclass(frozen=True)
class Result:
    case: Case
    ms: list[float]
    statements: list[int]
    #: time spent inside the database calls of each request
    sql_ms: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.ms)

    @property
    def p95(self) -> float:
        ordered = sorted(self.ms)
        return ordered[math.ceil(0.95 * len(ordered)) - 1]  # nearest rank


@dataclass
class StatementStats:
    """One distinct statement (IN lists of any length count as one) over every measured run."""

    statement: str
    parameters: Any
    seconds: list[float] = field(default_factory=list)
    cases: set[str] = field(default_factory=set)


class Recorder:
    """Times every statement the engine runs while a request is being measured."""

    def __init__(self, engine: sa.Engine) -> None:
        self.current: list[Executed] | None = None
        sa.event.listen(engine, "before_cursor_execute", self._before)
        sa.event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, conn: sa.Connection, *_: Any) -> None:
        conn.info.setdefault("bench_started", []).append(time.perf_counter())

    def _after(
        self,
        conn: sa.Connection,
        _cursor: Any,
        statement: str,
        parameters: Any,
        _context: Any,
        executemany: bool,
    ) -> None:
        seconds = time.perf_counter() - conn.info["bench_started"].pop()
        if self.current is not None:
            parameters = parameters[0] if executemany else parameters
            self.current.append(Executed(statement, parameters, seconds))

    @contextmanager
    def recording(self) -> Iterator[list[Executed]]:
        self.current = executed = []
        try:
            yield executed
        finally:
            self.current = None


# --- the database -----------------------------------------------------------------------


def prepare_database(url: sa.URL, payments: int, *, keep: bool) -> None:
    """Seed a fresh database, or with --keep reuse one seeded with as many payments."""
    if keep and seeded_payments(url) == payments:
        print(f"reusing {url.database} ({payments:,} payments); matching the models' indexes")
        stale = sync_indexes(url)
        if stale is None:
            return
        print(f"  the schema changed ({stale}): seeding again")
    print(f"seeding {url.database} with {payments:,} payments")
    result = seed(url.render_as_string(hide_password=False), payments)
    print(
        f"  seeded {result.payments:,} payments, {result.events:,} events in {result.seconds:.1f} s"
    )


@dataclass(frozen=True)
class TodayRows:
    pending_id: int
    failed_id: int
    count: int


def _attempt(
    cashier: User,
    till: Till,
    status: str,
    at: datetime,
    *,
    phone: str,
    amount: int,
    code: str | None = None,
    resend_of: Payment | None = None,
) -> Payment:
    """One of today's attempts at the counter, as the service would have left it."""
    token = uuid.uuid4().hex
    final_at = at + timedelta(seconds=20) if status in ("paid", "failed", "rejected") else None
    fields: dict[str, Any] = {
        "till_id": till.id,
        "cashier_id": cashier.id,
        "idempotency_key": f"{cashier.id}:{TODAY_KEY}-{token}",
        "sale_ref": resend_of.sale_ref if resend_of else uuid.uuid4().hex,
        "resend_of_id": resend_of.id if resend_of else None,
        "phone": phone,
        "amount_kes": amount,
        "account_reference": "Sale",
        "transaction_desc": "Payment",
        "status": status,
        "created_at": at,
        "updated_at": final_at or at,
        "pushed_at": at,
        "final_at": final_at,
        "query_count": 0,
    }
    if status not in ("initiating", "rejected"):
        fields["merchant_request_id"] = f"29115-{token[:12]}-1"
        fields["checkout_request_id"] = f"ws_CO_BENCH{token}"
    if status == "paid":
        fields["result_code"] = "0"
        fields["result_desc"] = "The service request is processed successfully."
        fields["receipt_number"] = f"BT{token[:8].upper()}"
        fields["mpesa_transaction_date"] = f"{final_at:%Y%m%d%H%M%S}"
    elif status == "failed":
        fields["result_code"] = code
        fields["result_desc"] = "Request cancelled by user."
    elif status == "rejected":
        fields["push_error_code"] = "DarajaSystemBusy"
        fields["push_error_message"] = "500.003.02 System is busy."
    else:
        # Still open: the poller would ask Daraja about it shortly.
        fields["next_query_at"] = utcnow() + timedelta(seconds=25)
    if "push_started_at" in Payment.__table__.c and status != "initiating":
        # Newer models record when the push was claimed (app/models/payment.py).
        fields["push_started_at"] = at
    return Payment(**fields)


def forget_previous_runs() -> None:
    """Delete the rows an earlier run added (with --keep the history stays, today is redone)."""
    old = sa.select(Payment.id).where(
        Payment.idempotency_key.like(f"%:{TODAY_KEY}-%")
        | Payment.idempotency_key.like(f"%:{SHOP_KEY}-%")
    )
    # Only these rows refer to these rows (re-sends), and they go in the same statement; but
    # each deleted payment would fire a foreign-key check for re-sends pointing at it, which
    # reads the whole table when resend_of_id has no index. Skip the triggers for this
    # transaction (the bench connects as a superuser to its own database).
    db.session.execute(sa.text("SET LOCAL session_replication_role = replica"))
    db.session.execute(sa.delete(PaymentEvent).where(PaymentEvent.payment_id.in_(old)))
    db.session.execute(sa.delete(Payment).where(Payment.id.in_(old)))
    db.session.commit()


def add_shop_today(rows: int, cashier_name: str) -> int:
    """The other cashiers' sales today, so that "today" is as big as at a busy shop.

    The counter's queries must find one cashier's rows among the whole till's day; with only
    that cashier's rows in today any index on created_at would look good.
    """
    if rows <= 0:
        return 0
    cashier = db.session.execute(sa.select(User).where(User.username == cashier_name)).scalar_one()
    now = utcnow()
    day_start = nairobi_day_bounds(today_nairobi())[0]
    start = day_start + timedelta(minutes=1)
    width = max(1.0, (now - timedelta(minutes=5) - start).total_seconds())
    ids = list(
        db.session.execute(
            sa.text(INSERT_SHOP_TODAY),
            {
                "before": day_start,
                "cashier_id": cashier.id,
                "rows": rows,
                "key": SHOP_KEY,
                "start": start,
                "width": width,
            },
        ).scalars()
    )
    if ids:
        db.session.execute(sa.text(INSERT_EVENTS), {"first": min(ids), "last": max(ids)})
    db.session.commit()
    return len(ids)


def add_todays_rows(cashier_name: str) -> TodayRows:
    """40 of today's sales for one cashier: paid, failed (two re-sent), refused, and 5 open.

    The history stops at yesterday (bench.seed) and the rest of today belongs to the other
    cashiers, so this cashier's counter shows exactly these. Their phones are customers from
    the history, as at a real shop.
    """
    cashier = db.session.execute(sa.select(User).where(User.username == cashier_name)).scalar_one()
    till = db.session.execute(sa.select(Till).order_by(Till.id).limit(1)).scalar_one()
    last_id = db.session.execute(sa.select(sa.func.max(Payment.id))).scalar_one()
    rng = random.Random(7)
    phones = list(
        db.session.execute(
            sa.select(Payment.phone).where(
                Payment.id.in_([rng.randint(1, last_id) for _ in range(40)])
            )
        ).scalars()
    )

    now = utcnow()
    day_start = nairobi_day_bounds(today_nairobi())[0]
    start = max(day_start + timedelta(minutes=1), now - timedelta(hours=6))
    end = max(start, now - timedelta(minutes=40))

    def at(seconds_ago: float) -> datetime:
        return max(day_start + timedelta(seconds=1), now - timedelta(seconds=seconds_ago))

    # The settled sales of the day so far, evenly spread; two failed ones were re-sent.
    settled = ["paid"] * 25 + ["failed"] * 5 + ["rejected"] * 2
    rng.shuffle(settled)
    codes = iter(["1032", "1037", "1", "2001", "1032"])
    resent = 2
    step = (end - start) / len(settled)
    for i, status in enumerate(settled):
        when = start + step * i
        p = _attempt(
            cashier,
            till,
            status,
            when,
            phone=phones[i % len(phones)],
            amount=rng.randint(50, 3000),
            code=next(codes) if status == "failed" else None,
        )
        db.session.add(p)
        db.session.flush()
        if status == "failed" and resent:
            resent -= 1
            later = when + timedelta(seconds=60)
            again = _attempt(
                cashier, till, "paid", later, phone=p.phone, amount=p.amount_kes, resend_of=p
            )
            db.session.add(again)
            db.session.flush()
    # The measured rows, and the rest of what is open right now.
    failed = _attempt(cashier, till, "failed", at(50), phone=phones[-1], amount=500, code="1032")
    open_rows = [
        _attempt(cashier, till, "unconfirmed", at(1800), phone=phones[-2], amount=1200),
        _attempt(cashier, till, "unknown", at(600), phone=phones[-3], amount=300),
        _attempt(cashier, till, "pending", at(100), phone=phones[-4], amount=750),
        failed,
        _attempt(cashier, till, "pending", at(20), phone=phones[-5], amount=90),
        _attempt(cashier, till, "initiating", at(3), phone=phones[-6], amount=2000),
    ]
    for p in open_rows:
        db.session.add(p)
        db.session.flush()
    ids = sorted(
        db.session.execute(
            sa.select(Payment.id).where(Payment.idempotency_key.like(f"{cashier.id}:{TODAY_KEY}-%"))
        ).scalars()
    )
    db.session.execute(sa.text(INSERT_EVENTS), {"first": ids[0], "last": ids[-1]})
    db.session.commit()
    return TodayRows(pending_id=open_rows[2].id, failed_id=failed.id, count=len(ids))


# --- measuring --------------------------------------------------------------------------


def _logged_in(app: Flask, username: str, password: str) -> FlaskClient:
    client = app.test_client()
    response = client.post("/login", data={"username": username, "password": password})
    if response.status_code != 302:
        raise SystemExit(f"could not log in as {username}: HTTP {response.status_code}")
    return client


def _get(client: FlaskClient, case: Case) -> None:
    headers = {"HX-Request": "true"} if case.htmx else {}
    response = client.get(case.path, headers=headers)
    # 286 is htmx's "stop polling", sent with a row that is final (app/htmx.py).
    if response.status_code not in (200, 286):
        body = response.get_data(as_text=True)[:300]
        raise SystemExit(f"{case.label}: HTTP {response.status_code} for {case.path}\n{body}")


def measure(
    case: Case,
    client: FlaskClient,
    recorder: Recorder,
    *,
    runs: int,
    warmup: int,
    statements: dict[str, StatementStats],
) -> Result:
    """Server time of `runs` requests (after `warmup` untimed ones) and the SQL each ran."""
    for _ in range(warmup):
        _get(client, case)
    ms: list[float] = []
    counts: list[int] = []
    sql_ms: list[float] = []
    for _ in range(case.runs or runs):
        with recorder.recording() as executed:
            started = time.perf_counter()
            _get(client, case)
            ms.append((time.perf_counter() - started) * 1000)
        counts.append(len(executed))
        sql_ms.append(sum(e.seconds for e in executed) * 1000)
        for e in executed:
            key = compact(e.statement)
            stats = statements.setdefault(key, StatementStats(e.statement, e.parameters))
            stats.seconds.append(e.seconds)
            stats.cases.add(case.key)
    return Result(case, ms, counts, sql_ms)


def big_tables(conn: sa.Connection) -> dict[str, float]:
    """Tables holding more than BIG_TABLE_ROWS rows, by the planner's own estimate."""
    rows = conn.execute(
        sa.text(
            "SELECT relname, reltuples FROM pg_class WHERE relkind IN ('r', 'p')"
            " AND relnamespace = CAST('public' AS regnamespace) AND reltuples > :rows"
        ),
        {"rows": BIG_TABLE_ROWS},
    )
    return {name: estimate for name, estimate in rows}


@dataclass(frozen=True)
class PlanVerdict:
    #: whole reads of big tables (Seq Scans, or index scans with no index condition)
    problems: list[str]
    #: the indexes the plan reads
    indexes: list[str]


def plan_verdicts(
    engine: sa.Engine, statements: dict[str, StatementStats]
) -> dict[str, PlanVerdict]:
    """EXPLAIN each statement with the parameters of its first call, as the planner sees it.

    Normal planner settings: this is the plan the request got on this much data.
    """
    verdicts: dict[str, PlanVerdict] = {}
    with engine.connect() as conn:
        watched: Callable[[str], bool] = big_tables(conn).__contains__
        with conn.connection.dbapi_connection.cursor() as cursor:
            for key, stats in statements.items():
                if not explainable(stats.statement):
                    continue
                plan = explain(cursor, stats.statement, stats.parameters)
                indexes = sorted(
                    {node["Index Name"] for node, _ in plan_nodes(plan) if "Index Name" in node}
                )
                verdicts[key] = PlanVerdict(scan_problems(plan, watched), indexes)
        conn.rollback()
    return verdicts


# --- the report -------------------------------------------------------------------------


def print_results(results: list[Result]) -> None:
    print()
    print(
        f"{'request':<44} {'median ms':>10} {'p95 ms':>8} {'SQL/req':>8} {'in SQL':>8}"
        f"  {'goal':<10} met"
    )
    for r in results:
        sql = sorted(set(r.statements))
        per_request = str(sql[0]) if len(sql) == 1 else f"{sql[0]}-{sql[-1]}"
        if r.case.goal_ms is None:
            goal, met = "-", "-"
        else:
            goal = f"<= {r.case.goal_ms:g} ms"
            met = "yes" if r.median <= r.case.goal_ms else "NO"
        sql_ms = statistics.median(r.sql_ms)
        print(
            f"{r.case.label:<44} {r.median:>10.1f} {r.p95:>8.1f} {per_request:>8} {sql_ms:>8.1f}"
            f"  {goal:<10} {met}"
        )
    print(
        "(server time around the test-client call; 'in SQL': median ms inside the database calls)"
    )


def print_statements(
    statements: dict[str, StatementStats], verdicts: dict[str, PlanVerdict]
) -> None:
    print()
    print(
        "Distinct statements, by total time (mean ms, calls, requests: the keys above;"
        f" plan: whole reads of tables > {BIG_TABLE_ROWS:,} rows)"
    )
    ordered = sorted(statements.items(), key=lambda item: -sum(item[1].seconds))
    for key, stats in ordered:
        mean = statistics.mean(stats.seconds) * 1000
        where = ",".join(sorted(stats.cases))
        plan = verdicts.get(key)
        if plan is None:
            verdict = "(no table)"
        elif plan.problems:
            verdict = "SCANS: " + "; ".join(plan.problems)
        else:
            verdict = "index: " + (", ".join(plan.indexes) or "(small tables only)")
        print(f"{mean:>8.2f} ms {len(stats.seconds):>6}x  [{where}]  {verdict}")
        print(f"      {key}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.counter", description=__doc__)
    parser.add_argument("--payments", type=int, default=1_000_000)
    parser.add_argument(
        "--keep",
        action="store_true",
        help="reuse the database if it holds as many payments, and keep it afterwards",
    )
    parser.add_argument("--url", default=DEFAULT_URL, help="a pesadesk_bench_* database")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument(
        "--shop-today",
        type=int,
        default=SHOP_TODAY,
        help="the other cashiers' sales today (copied from the history)",
    )
    args = parser.parse_args(argv)

    url = bench_url(args.url)
    prepare_database(url, args.payments, keep=args.keep)
    try:
        run(url, args)
    finally:
        if not args.keep:
            drop_database(url)


def run(url: sa.URL, args: argparse.Namespace) -> None:
    """Add today's rows, measure every request, then explain what they ran."""
    app = bench_app(url)
    password = secrets.token_urlsafe(12)
    with app.app_context():
        forget_previous_runs()
        shop = add_shop_today(args.shop_today, CASHIER)
        rows = add_todays_rows(CASHIER)
        for username in (CASHIER, OWNER):
            user = db.session.execute(sa.select(User).where(User.username == username)).scalar_one()
            user.set_password(password)
        db.session.commit()
        engine = db.engine
    print(
        f"today: {rows.count} rows for {CASHIER} (measured: pending #{rows.pending_id},"
        f" failed #{rows.failed_id}), {shop:,} for the other cashiers"
    )
    clients = {name: _logged_in(app, name, password) for name in (CASHIER, OWNER)}
    cases = [
        Case(
            "counter", "counter page  GET /cashier/", CASHIER, "/cashier/", goal_ms=COUNTER_GOAL_MS
        ),
        Case(
            "poll-pending",
            "poll, pending row  GET .../row?seen=waiting",
            CASHIER,
            f"/cashier/payments/{rows.pending_id}/row?seen=waiting",
            htmx=True,
            goal_ms=POLL_GOAL_MS,
        ),
        Case(
            "poll-failed",
            "poll, row just failed",
            CASHIER,
            f"/cashier/payments/{rows.failed_id}/row?seen=waiting",
            htmx=True,
            goal_ms=POLL_GOAL_MS,
        ),
        # A row that changed tells the day's totals to refresh: their own request.
        Case(
            "totals", "totals refresh  GET /cashier/totals", CASHIER, "/cashier/totals", htmx=True
        ),
        Case("report", "owner report, today  GET /owner/report", OWNER, "/owner/report", runs=10),
    ]
    recorder = Recorder(engine)
    statements: dict[str, StatementStats] = {}
    results = [
        measure(
            case,
            clients[case.who],
            recorder,
            runs=args.runs,
            warmup=args.warmup,
            statements=statements,
        )
        for case in cases
    ]
    print_results(results)
    print_statements(statements, plan_verdicts(engine, statements))
    engine.dispose()


if __name__ == "__main__":
    main()
