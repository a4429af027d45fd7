"""Fill a pesadesk_bench_* PostgreSQL database with the app's schema and N realistic payments."""

from __future__ import annotations

import argparse
import math
import re
import secrets
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from datetime import time as clock

import sqlalchemy as sa
from cryptography.fernet import Fernet
from flask import Flask
from werkzeug.security import generate_password_hash

from app import create_app
from app.demo import simulator_till
from app.extensions import db
from app.models import Payment, Role, User
from app.payments.prefixes import NETWORK_BY_PREFIX, SAFARICOM
from app.timeutil import NAIROBI, today_nairobi

#: payments a day: the shop in the issue (a million payments over about three months)
PER_DAY = 11_000
#: distinct customers: a phone pays about five times over a million payments
CUSTOMERS = 200_000
#: the demo's cashier plus four colleagues; history is spread evenly over them
CASHIERS = ("cashier", "cashier2", "cashier3", "cashier4", "cashier5")
OTHER_USERS = (("owner", Role.OWNER), ("admin", Role.ADMIN))
#: the only databases the bench may create, fill or drop
BENCH_PREFIX = "pesadesk_bench_"
BENCH_HOST = "127.0.0.1"
#: what the seed writes as the payments table's comment, before the number of payments
MARK = "bench.seed:"
#: a scratch schema where the models are created empty, to compare with what the bench holds
SCRATCH_SCHEMA = "bench_models"
#: columns the INSERT below fills; a new NOT NULL column without a default must be added here
SEEDED_COLUMNS = frozenset(
    "id till_id cashier_id idempotency_key sale_ref resend_of_id cancelled_at cancelled_by_id"
    " phone amount_kes account_reference transaction_desc status merchant_request_id"
    " checkout_request_id candidate_checkout_id result_code result_desc push_error_code"
    " push_error_message receipt_number mpesa_transaction_date created_at updated_at"
    " pushed_at final_at next_query_at query_count lease_owner version".split()
)

# Small SQL helpers, inlined by the planner (single-expression SQL functions), so the big
# INSERT stays one static statement. They live in pg_temp: gone when the session ends.
FUNCTIONS = (
    # A deterministic pseudo-random number in [0, m) for (x, seed): row g can recompute what
    # row g - 1 drew, which is how a resend knows its original's status, phone and amount.
    """
    CREATE FUNCTION pg_temp.h(x bigint, seed bigint, m bigint) RETURNS bigint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT (hashint8extended(x, seed) & 9223372036854775807) % m $$
    """,
    # When attempt x was made: day (x - 1) / per_day after `base` (a Nairobi midnight),
    # spread evenly over the shop's hours, 07:00 to 21:00 Nairobi, in attempt order.
    """
    CREATE FUNCTION pg_temp.at(x bigint, base timestamptz, per_day bigint) RETURNS timestamptz
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT base + make_interval(secs => ((x - 1) / per_day) * 86400.0 + 25200.0
        + (((x - 1) % per_day) + pg_temp.h(x, 8, 1000) / 1000.0) * 50400.0 / per_day) $$
    """,
)

# One row per attempt g. Statuses: ~80% paid, ~15% failed (1032/1037/1/2001), ~3% refused by
# Daraja, the rest unconfirmed or unknown. An even g re-sends g - 1 (same sale, phone, amount
# and cashier, a minute later) for about a quarter of the failed attempts. Each layer computes its
# columns once: OFFSET 0 keeps the planner from merging the layers, which would repeat every
# hash wherever a column is used.
INSERT_PAYMENTS = """
INSERT INTO payments (
    id, till_id, cashier_id, idempotency_key, sale_ref, resend_of_id, cancelled_at,
    cancelled_by_id, phone, amount_kes, account_reference, transaction_desc, status,
    merchant_request_id, checkout_request_id, candidate_checkout_id, result_code, result_desc,
    push_error_code, push_error_message, receipt_number, mpesa_transaction_date, created_at,
    updated_at, pushed_at, final_at, next_query_at, query_count, lease_owner, version
)
SELECT
    z.g,
    :till_id,
    z.cashier_id,
    z.cashier_id || ':' || CASE WHEN z.resend THEN 'resend-' || z.o ELSE md5('key' || z.g) END,
    md5('sale' || z.o),
    CASE WHEN z.resend THEN z.o END,
    z.cancelled_at,
    CASE WHEN z.cancelled_at IS NOT NULL THEN z.cashier_id END,
    z.phone,
    z.amount_kes,
    'Sale',
    'Payment',
    z.status,
    CASE WHEN z.status <> 'rejected' THEN '29115-' || (34620561 + z.g) || '-1' END,
    CASE WHEN z.status <> 'rejected' THEN
        'ws_CO_' || to_char(z.created_at AT TIME ZONE 'Africa/Nairobi', 'DDMMYYYYHH24MISS')
        || lpad(z.g::text, 9, '0')
    END,
    NULL,
    z.result_code,
    CASE z.result_code
        WHEN '0' THEN 'The service request is processed successfully.'
        WHEN '1032' THEN 'Request cancelled by user.'
        WHEN '1037' THEN 'DS timeout user cannot be reached.'
        WHEN '1' THEN 'The balance is insufficient for the transaction.'
        WHEN '2001' THEN 'The initiator information is invalid.'
    END,
    CASE WHEN z.status = 'rejected' THEN
        CASE WHEN z.c < 14 THEN 'DarajaSystemBusy' ELSE 'DarajaSubscriberLocked' END
    END,
    CASE WHEN z.status = 'rejected' THEN
        CASE WHEN z.c < 14 THEN '500.003.02 System is busy. Please try again in few minutes.'
        ELSE '500.001.1001 Unable to lock subscriber, a transaction is already in process'
            || ' for the current subscriber'
        END
    END,
    -- 48271 is a primitive root of the prime 2^31 - 1: g -> g * 48271 mod p is one-to-one,
    -- so the receipts are unique yet look random.
    CASE WHEN z.status = 'paid' THEN
        'SB' || upper(lpad(to_hex((z.g * 48271) % 2147483647), 8, '0'))
    END,
    CASE WHEN z.status = 'paid' THEN
        to_char(z.final_at AT TIME ZONE 'Africa/Nairobi', 'YYYYMMDDHH24MISS')
    END,
    z.created_at,
    greatest(coalesce(z.final_at, z.created_at + interval '180 seconds'), z.cancelled_at),
    z.created_at,
    z.final_at,
    NULL,
    CASE WHEN z.status IN ('unconfirmed', 'unknown') THEN 12 ELSE 0 END,
    NULL,
    CASE WHEN z.status IN ('rejected', 'unknown') THEN 2 ELSE 3 END
FROM (
    SELECT
        y.*,
        CASE y.status
            WHEN 'paid' THEN y.created_at + make_interval(secs => 8 + pg_temp.h(y.g, 10, 30))
            WHEN 'failed' THEN y.created_at + make_interval(secs => 5 + pg_temp.h(y.g, 10, 40))
            WHEN 'rejected' THEN y.created_at + interval '1 second'
        END AS final_at,
        CASE WHEN y.status = 'unconfirmed' AND pg_temp.h(y.g, 9, 3) = 0 THEN
            y.created_at + interval '120 seconds'
        END AS cancelled_at
    FROM (
        SELECT
            x.g,
            x.o,
            x.resend,
            x.c,
            CASE
                WHEN x.b < 800 THEN 'paid'
                WHEN x.b < 950 THEN 'failed'
                WHEN x.b < 980 THEN 'rejected'
                WHEN x.b < 995 THEN 'unconfirmed'
                ELSE 'unknown'
            END AS status,
            CASE
                WHEN x.b < 800 THEN '0'
                WHEN x.b >= 950 THEN NULL
                WHEN x.c < 10 THEN '1032'
                WHEN x.c < 15 THEN '1037'
                WHEN x.c < 18 THEN '1'
                ELSE '2001'
            END AS result_code,
            (CAST(:cashiers AS integer[]))[1 + pg_temp.h(x.o, 4, :n_cashiers)] AS cashier_id,
            '2547' || (CAST(:prefixes AS text[]))[1 + x.customer % :n_prefixes]
                || lpad(((x.customer / :n_prefixes) * 37 + 17)::text, 6, '0') AS phone,
            10 + floor(4990 * power(pg_temp.h(x.o, 6, 1000000) / 1000000.0, 2))::integer
                AS amount_kes,
            CASE WHEN x.resend
                THEN pg_temp.at(x.o, :base, :per_day)
                    + make_interval(secs => 30 + pg_temp.h(x.g, 7, 60))
                ELSE pg_temp.at(x.g, :base, :per_day)
            END AS created_at
        FROM (
            SELECT
                r.g,
                r.resend,
                CASE WHEN r.resend THEN r.g - 1 ELSE r.g END AS o,
                pg_temp.h(r.g, 1, 1000) AS b,
                pg_temp.h(r.g, 2, 20) AS c,
                pg_temp.h(CASE WHEN r.resend THEN r.g - 1 ELSE r.g END, 5, :customers)
                    AS customer
            FROM (
                SELECT
                    s.g,
                    -- Only an even attempt re-sends, and only its odd (never re-sent)
                    -- predecessor, and only when that one failed: no chains to follow.
                    s.g % 2 = 0
                    AND pg_temp.h(s.g - 1, 1, 1000) BETWEEN 800 AND 949
                    AND pg_temp.h(s.g, 3, 2) = 0 AS resend
                FROM generate_series(1::bigint, :payments) AS s(g)
                OFFSET 0
            ) AS r
            OFFSET 0
        ) AS x
        OFFSET 0
    ) AS y
    OFFSET 0
) AS z
"""

# Each payment's timeline: "created", then the event that moved it last (none while it is
# still initiating) and "cancel_local" for the few given up at the counter, in the order they
# happened. Also used by bench.counter for the rows it adds today.
INSERT_EVENTS = """
INSERT INTO payment_events (
    payment_id, created_at, source, kind, from_status, to_status, conflict, result_code, note,
    data, raw_callback_id, idem_key
)
SELECT
    p.id,
    CASE
        WHEN e.n = 1 THEN p.created_at
        WHEN e.n = 3 THEN p.cancelled_at
        WHEN p.final_at IS NOT NULL THEN p.final_at
        WHEN p.status = 'pending' THEN p.created_at + interval '1 second'
        WHEN p.status = 'unknown' THEN p.created_at + interval '30 seconds'
        ELSE p.created_at + interval '180 seconds'
    END,
    CASE
        WHEN e.n = 1 THEN 'push'
        WHEN e.n = 3 THEN 'manual'
        WHEN p.status IN ('paid', 'failed') THEN 'callback'
        WHEN p.status = 'unconfirmed' THEN 'expiry'
        ELSE 'push'
    END,
    k.kind,
    CASE
        WHEN e.n = 1 THEN NULL
        WHEN e.n = 3 THEN p.status
        WHEN p.status IN ('pending', 'rejected', 'unknown') THEN 'initiating'
        ELSE 'pending'
    END,
    CASE WHEN e.n = 1 THEN 'initiating' ELSE p.status END,
    false,
    CASE WHEN e.n = 2 THEN p.result_code END,
    CASE WHEN e.n = 2 THEN p.result_desc WHEN e.n = 3 THEN 'cancelled at the counter' END,
    CASE
        WHEN e.n = 2 AND p.status = 'paid' THEN json_build_object(
            'receipt_number', p.receipt_number, 'transaction_date', p.mpesa_transaction_date)
        WHEN e.n = 2 AND p.status = 'rejected' THEN json_build_object(
            'error_code', p.push_error_code, 'error_message', p.push_error_message)
    END,
    NULL,
    CASE
        WHEN e.n = 2 THEN
            k.kind || ':' || coalesce(p.result_code, '') || ':' || coalesce(p.receipt_number, '')
        ELSE k.kind
    END
FROM payments AS p
CROSS JOIN (VALUES (1), (2), (3)) AS e(n)
CROSS JOIN LATERAL (
    SELECT CASE
        WHEN e.n = 1 THEN 'created'
        WHEN e.n = 3 THEN 'cancel_local'
        WHEN p.status = 'paid' THEN 'success'
        WHEN p.status = 'failed' THEN 'failure'
        WHEN p.status = 'pending' THEN 'push_accepted'
        WHEN p.status = 'rejected' THEN 'push_rejected'
        WHEN p.status = 'unconfirmed' THEN 'give_up'
        ELSE 'push_unknown'
    END AS kind
) AS k
WHERE p.id BETWEEN :first AND :last
    AND (
        e.n = 1
        OR (e.n = 2 AND p.status <> 'initiating')
        OR (e.n = 3 AND p.cancelled_at IS NOT NULL)
    )
ORDER BY p.id, e.n
"""


@dataclass(frozen=True)
class SeedResult:
    payments: int
    events: int
    first_day: date
    last_day: date
    seconds: float


def bench_url(url: str) -> sa.URL:
    """The URL for psycopg 3, if it names a pesadesk_bench_* database on 127.0.0.1; else raise.

    The bench drops and fills whole databases: it must never reach anything else.
    """
    parsed = sa.make_url(url)
    name = parsed.database or ""
    if (
        parsed.get_backend_name() != "postgresql"
        or parsed.host != BENCH_HOST
        or not re.fullmatch(rf"{BENCH_PREFIX}[a-z0-9_]+", name)
    ):
        raise SystemExit(
            f"refusing {parsed.render_as_string()}: the bench only touches PostgreSQL databases"
            f" named {BENCH_PREFIX}* on {BENCH_HOST}"
        )
    return parsed.set(drivername="postgresql+psycopg")


def ensure_database(url: sa.URL, *, fresh: bool = False) -> bool:
    """Create the bench database if it is missing (dropped first when `fresh`); True if new."""
    url = bench_url(url.render_as_string(hide_password=False))
    if fresh:
        drop_database(url)
    admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.execute(
                sa.text("SELECT 1 FROM pg_database WHERE datname = :name"),
                {"name": url.database},
            ).scalar()
            if not exists:
                # bench_url allowed only [a-z0-9_] in the name: safe to quote into DDL.
                conn.execute(sa.text(f'CREATE DATABASE "{url.database}"'))
            return not exists
    finally:
        admin.dispose()


def drop_database(url: sa.URL) -> None:
    """Drop the bench database; bench_url refuses any other name or host."""
    url = bench_url(url.render_as_string(hide_password=False))
    admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
    finally:
        admin.dispose()


def bench_app(url: sa.URL) -> Flask:
    """The app against the bench database, as a test would build it (no demo, no simulator)."""
    return create_app(
        {
            "TESTING": True,
            "DEMO": False,
            "SIMULATOR_ENABLED": False,
            "SECRET_KEY": secrets.token_hex(32),
            "ENCRYPTION_KEY": Fernet.generate_key().decode(),
            "SQLALCHEMY_DATABASE_URI": url.render_as_string(hide_password=False),
            "WTF_CSRF_ENABLED": False,
        }
    )


def _unusable_password_hash() -> str:
    # Nobody knows this password: bench.counter sets its own before logging in. A cheap hash
    # method keeps seeding fast; these accounts exist only in a throwaway database.
    return generate_password_hash(secrets.token_urlsafe(16), method="pbkdf2:sha256:1000")


def _till_and_users() -> tuple[int, list[int]]:
    """The demo-like till and users (as tests/conftest.py seed_till_and_users), 5 cashiers."""
    till = simulator_till("Bench Shop")
    db.session.add(till)
    cashiers = [
        User(username=name, role=Role.CASHIER, password_hash=_unusable_password_hash())
        for name in CASHIERS
    ]
    db.session.add_all(cashiers)
    for username, role in OTHER_USERS:
        db.session.add(User(username=username, role=role, password_hash=_unusable_password_hash()))
    db.session.commit()
    return till.id, [user.id for user in cashiers]


def _check_columns() -> None:
    """Fail clearly if the model gained a column this INSERT cannot leave out."""
    missing = sorted(
        column.name
        for column in Payment.__table__.columns
        if column.name not in SEEDED_COLUMNS
        and not column.nullable
        and column.server_default is None
    )
    if missing:
        raise SystemExit(f"payments has new required columns {missing}: add them to bench/seed.py")
    left_null = sorted(
        column.name for column in Payment.__table__.columns if column.name not in SEEDED_COLUMNS
    )
    if left_null:
        print(f"note: the seed leaves these newer payments columns NULL: {', '.join(left_null)}")


def _detach(conn: sa.Connection, tables: tuple[str, ...]) -> list[str]:
    """Drop the tables' secondary indexes, unique and foreign keys; return the DDL to restore.

    Building an index once from sorted rows, and checking a foreign key with one join, is many
    times faster than maintaining them row by row over a million inserts. The DDL comes from
    the catalogue, so what is restored is exactly what db.create_all() made (primary keys,
    NOT NULL and CHECK constraints stay in place throughout).
    """
    quote = conn.dialect.identifier_preparer.quote
    builds: list[str] = []
    foreign: list[str] = []
    drops: list[str] = []
    for table in tables:
        where = {"table": table}
        for name, definition, kind in conn.execute(
            sa.text(
                "SELECT conname, pg_get_constraintdef(oid), contype FROM pg_constraint"
                " WHERE conrelid = CAST(:table AS regclass) AND contype IN ('u', 'f')"
                " ORDER BY conname"
            ),
            where,
        ):
            drops.append(f"ALTER TABLE {quote(table)} DROP CONSTRAINT {quote(name)}")
            restore = f"ALTER TABLE {quote(table)} ADD CONSTRAINT {quote(name)} {definition}"
            (foreign if kind == "f" else builds).append(restore)
        for name, definition in conn.execute(
            sa.text(
                "SELECT CAST(i.indexrelid AS regclass)::text, pg_get_indexdef(i.indexrelid)"
                " FROM pg_index AS i WHERE i.indrelid = CAST(:table AS regclass)"
                " AND NOT EXISTS (SELECT 1 FROM pg_constraint AS c"
                " WHERE c.conindid = i.indexrelid) ORDER BY 1"
            ),
            where,
        ):
            drops.append(f"DROP INDEX {quote(name)}")
            builds.append(definition)
    for ddl in drops:
        conn.exec_driver_sql(ddl)
    # Foreign keys last: one may rely on a unique index rebuilt just before.
    return builds + foreign


def safaricom_prefixes() -> list[str]:
    """The two digits after 2547 of Safaricom's 07xx ranges (app/payments/prefixes.py)."""
    return sorted(
        prefix[2:]
        for prefix, network in NETWORK_BY_PREFIX.items()
        if network == SAFARICOM and prefix.startswith("07")
    )


def seed(url: str, payments: int, *, per_day: int = PER_DAY, fresh: bool = True) -> SeedResult:
    """Recreate the schema in the bench database at `url` and insert `payments` payments.

    The payments cover the whole days before today (Nairobi), `per_day` a day, so that today
    holds only what a benchmark adds itself. The database is created if missing; everything
    in it is replaced.
    """
    started = time.perf_counter()
    target = bench_url(url)
    ensure_database(target, fresh=fresh)
    days = max(1, math.ceil(payments / per_day))
    first_day = today_nairobi() - timedelta(days=days)
    base = datetime.combine(first_day, clock.min, tzinfo=NAIROBI)
    app = bench_app(target)
    with app.app_context():
        _check_columns()
        engine = db.engine
        with engine.begin() as conn:
            # A fresh schema even if an older version of the models left other tables behind.
            conn.execute(sa.text("DROP SCHEMA public CASCADE"))
            conn.execute(sa.text("CREATE SCHEMA public"))
        db.create_all()
        till_id, cashier_ids = _till_and_users()
        db.session.remove()
        prefixes = safaricom_prefixes()
        with engine.begin() as conn:
            # Throwaway data: losing the last commit on a crash costs nothing here.
            conn.execute(sa.text("SET LOCAL synchronous_commit = off"))
            conn.execute(sa.text("SET LOCAL work_mem = '256MB'"))
            conn.execute(sa.text("SET LOCAL maintenance_work_mem = '512MB'"))
            # JIT would spend seconds compiling these long expressions before inserting a row.
            conn.execute(sa.text("SET LOCAL jit = off"))
            for function in FUNCTIONS:
                conn.execute(sa.text(function))
            restore = _detach(conn, ("payments", "payment_events"))
            step = time.perf_counter()
            inserted = conn.execute(
                sa.text(INSERT_PAYMENTS),
                {
                    "payments": payments,
                    "per_day": per_day,
                    "base": base,
                    "till_id": till_id,
                    "cashiers": cashier_ids,
                    "n_cashiers": len(cashier_ids),
                    "prefixes": prefixes,
                    "n_prefixes": len(prefixes),
                    "customers": CUSTOMERS,
                },
            ).rowcount
            print(f"  payments: {inserted:,} rows in {time.perf_counter() - step:.1f} s")
            # Ids were given explicitly: move the sequence past them for the app's own rows.
            conn.execute(
                sa.text(
                    "SELECT setval(pg_get_serial_sequence('payments', 'id'),"
                    " (SELECT max(id) FROM payments))"
                )
            )
            step = time.perf_counter()
            events = conn.execute(sa.text(INSERT_EVENTS), {"first": 1, "last": payments}).rowcount
            print(f"  payment_events: {events:,} rows in {time.perf_counter() - step:.1f} s")
            step = time.perf_counter()
            for ddl in restore:
                conn.exec_driver_sql(ddl)
            print(
                f"  {len(restore)} indexes and constraints rebuilt and checked"
                f" in {time.perf_counter() - step:.1f} s"
            )
            # bench.counter --keep reads this to know what the database holds.
            conn.execute(sa.text(f"COMMENT ON TABLE payments IS '{MARK} {int(payments)} payments'"))
        step = time.perf_counter()
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            # VACUUM sets hint bits and the visibility map, as autovacuum would have on a
            # database that grew over months; ANALYZE gives the planner real statistics.
            conn.execute(sa.text("VACUUM (ANALYZE) payments, payment_events, users, tills"))
        print(f"  vacuum and analyze: {time.perf_counter() - step:.1f} s")
        engine.dispose()
    return SeedResult(
        payments=inserted,
        events=events,
        first_day=first_day,
        last_day=first_day + timedelta(days=days - 1),
        seconds=time.perf_counter() - started,
    )


def seeded_payments(url: sa.URL) -> int | None:
    """How many payments bench.seed put in this database; None if it did not fill it."""
    engine = sa.create_engine(bench_url(url.render_as_string(hide_password=False)))
    try:
        with engine.connect() as conn:
            comment = conn.execute(
                sa.text("SELECT obj_description(to_regclass('payments'), 'pg_class')")
            ).scalar()
    except sa.exc.OperationalError:
        return None  # no such database
    finally:
        engine.dispose()
    match = re.fullmatch(rf"{re.escape(MARK)} (\d+) payments", comment or "")
    return int(match.group(1)) if match else None


def _snapshot(conn: sa.Connection, schema: str) -> tuple[set, set, dict[tuple[str, str], str]]:
    """Columns, constraints and other indexes of a schema, with its name taken out of the DDL."""
    where = {"schema": schema}
    columns = {
        tuple(row)
        for row in conn.execute(
            sa.text(
                "SELECT table_name, column_name, data_type, is_nullable,"
                " coalesce(character_maximum_length, 0) FROM information_schema.columns"
                " WHERE table_schema = :schema"
            ),
            where,
        )
    }
    constraints = {
        (table, name, definition.replace(f"{schema}.", ""))
        for table, name, definition in conn.execute(
            sa.text(
                "SELECT t.relname, k.conname, pg_get_constraintdef(k.oid) FROM pg_constraint AS k"
                " JOIN pg_class AS t ON t.oid = k.conrelid"
                " JOIN pg_namespace AS n ON n.oid = t.relnamespace WHERE n.nspname = :schema"
            ),
            where,
        )
    }
    indexes = {
        (table, name): definition.replace(f"{schema}.", "")
        for table, name, definition in conn.execute(
            sa.text(
                "SELECT t.relname, i.relname, pg_get_indexdef(x.indexrelid) FROM pg_index AS x"
                " JOIN pg_class AS i ON i.oid = x.indexrelid"
                " JOIN pg_class AS t ON t.oid = x.indrelid"
                " JOIN pg_namespace AS n ON n.oid = t.relnamespace WHERE n.nspname = :schema"
                " AND NOT EXISTS (SELECT 1 FROM pg_constraint AS k"
                " WHERE k.conindid = x.indexrelid)"
            ),
            where,
        )
    }
    return columns, constraints, indexes


def sync_indexes(url: sa.URL) -> str | None:
    """Give a kept bench database the indexes the models declare now, without reseeding.

    The models are created empty in a scratch schema and compared with the database: indexes
    that differ are dropped or built (a minute of seeding saved each time an index changes).
    Returns why the database must be seeded again instead (other columns or constraints), or
    None once its indexes match.
    """
    engine = sa.create_engine(bench_url(url.render_as_string(hide_password=False)))
    quote = engine.dialect.identifier_preparer.quote
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {SCRATCH_SCHEMA} CASCADE"))
            conn.execute(sa.text(f"CREATE SCHEMA {SCRATCH_SCHEMA}"))
            # Hand-written DDL (the audit log's append-only trigger, app/models/audit.py) names
            # its table unqualified: the search path sends it to the scratch schema too.
            conn.execute(sa.text(f"SET LOCAL search_path TO {SCRATCH_SCHEMA}"))
            db.metadata.create_all(
                conn.execution_options(schema_translate_map={None: SCRATCH_SCHEMA})
            )
            conn.execute(sa.text("SET LOCAL search_path TO public"))
            want_columns, want_constraints, want_indexes = _snapshot(conn, SCRATCH_SCHEMA)
            conn.execute(sa.text(f"DROP SCHEMA {SCRATCH_SCHEMA} CASCADE"))
            have_columns, have_constraints, have_indexes = _snapshot(conn, "public")
            if want_columns != have_columns:
                return f"columns differ: {sorted(want_columns ^ have_columns)}"
            if want_constraints != have_constraints:
                return f"constraints differ: {sorted(want_constraints ^ have_constraints)}"
            changed = set()
            for key, definition in sorted(have_indexes.items()):
                if want_indexes.get(key) != definition:
                    print(f"  dropping index {key[1]} (not in the models)")
                    conn.exec_driver_sql(f"DROP INDEX {quote(key[1])}")
                    changed.add(key[0])
            for key, definition in sorted(want_indexes.items()):
                if have_indexes.get(key) != definition:
                    step = time.perf_counter()
                    conn.exec_driver_sql(definition)
                    print(f"  built {definition} in {time.perf_counter() - step:.1f} s")
                    changed.add(key[0])
        if changed:
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("ANALYZE " + ", ".join(sorted(map(quote, changed))))
    finally:
        engine.dispose()
    return None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.seed", description=__doc__)
    parser.add_argument(
        "--url",
        required=True,
        help=f"postgresql://postgres@{BENCH_HOST}:5432/{BENCH_PREFIX}<name> (replaced entirely)",
    )
    parser.add_argument("--payments", type=int, default=1_000_000)
    parser.add_argument("--per-day", type=int, default=PER_DAY)
    args = parser.parse_args(argv)
    result = seed(args.url, args.payments, per_day=args.per_day)
    print(
        f"seeded {result.payments:,} payments and {result.events:,} events"
        f" ({result.first_day} to {result.last_day}, Nairobi) in {result.seconds:.1f} s"
    )


if __name__ == "__main__":
    main()
