"""Two gunicorn workers and two scheduler processes on one PostgreSQL, against the simulator.

Creates 200+ payments with mixed outcomes through the real cashier form, at two tills of two
shops (each its own Daraja app, shortcode and callback URL), and checks that every payment
ends where it should, no payment is queried twice for one slot (the simulator's own count of
queries equals our query log), no event is duplicated, every callback reached its own till,
and Daraja sees one OAuth request per till.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa
from cryptography.fernet import Fernet

from app.config import SANDBOX_PASSKEY
from tests.conftest import _psycopg_url, free_port, sibling_pg_database

pytestmark = pytest.mark.multiprocess

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "many-process-pw"
# amount -> (final status, result code) per the simulator's catalogue (docs/simulator.md)
MIX = {
    10: ("paid", "0"),  # success, callback sent
    2020: ("paid", "0"),  # success, callback sent twice
    3030: ("paid", "0"),  # success, query final at once, callback late
    4040: ("paid", "0"),  # success, callback lost: only the poller can find it
    1032: ("failed", "1032"),  # cancelled on the phone
    2001: ("failed", "2001"),  # wrong PIN
    4032: ("failed", "1032"),  # cancelled, callback lost
}
PAYMENTS = 210
SESSIONS = 6


SECOND_KEY, SECOND_SECRET = "second-app-key", "second-app-secret"
SECOND_SHORTCODE, SECOND_PASSKEY = "600100", "second-passkey-0000"


def _add_second_shop(conn: sa.Connection, fernet: Fernet) -> None:
    """A second shop with a Buy Goods till on its own Daraja app, and its own cashier."""
    shop = conn.execute(sa.text("INSERT INTO shops (name, created_at) VALUES ('Branch', now())"
                                " RETURNING id")).scalar_one()  # fmt: skip
    till = conn.execute(
        sa.text(
            "INSERT INTO tills (shop_id, name, shortcode, till_type, till_number, environment,"
            " consumer_key_enc, consumer_secret_enc, passkey_enc, callback_token,"
            " query_budget_per_s, allow_ported_numbers, callbacks_refused, created_at,"
            " updated_at) VALUES (:shop, 'Branch counter', :code, 'till', '5123456', 'simulator',"
            " :key, :secret, :passkey, :token, 2, false, 0, now(), now()) RETURNING id"
        ),
        {
            "shop": shop,
            "code": SECOND_SHORTCODE,
            "key": fernet.encrypt(SECOND_KEY.encode()),
            "secret": fernet.encrypt(SECOND_SECRET.encode()),
            "passkey": fernet.encrypt(SECOND_PASSKEY.encode()),
            "token": "second-till-callback-token-0000",
        },
    ).scalar_one()
    conn.execute(
        sa.text(
            "INSERT INTO users (username, username_key, password_hash, role, active, language,"
            " created_at, session_version, is_demo) SELECT 'cashier2', 'cashier2', password_hash,"
            " 'cashier', true, 'en', now(), 1, is_demo FROM users WHERE username = 'cashier'"
        )
    )
    conn.execute(
        sa.text(
            "INSERT INTO user_tills (user_id, till_id)"
            " SELECT id, :till FROM users WHERE username = 'cashier2'"
        ),
        {"till": till},
    )


@pytest.fixture
def pg_url(pg_database):
    with sibling_pg_database(pg_database, "_mp") as url:
        yield url


class Processes:
    def __init__(self, tmp: Path, env: dict[str, str]) -> None:
        self.tmp, self.env, self.procs = tmp, env, []

    def start(self, name: str, *args: str) -> subprocess.Popen:
        log = (self.tmp / f"{name}.log").open("w")
        proc = subprocess.Popen(args, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        self.procs.append((name, proc, log))
        return proc

    def logs(self) -> str:
        return "\n".join(
            f"--- {name} ---\n{(self.tmp / f'{name}.log').read_text()[-3000:]}"
            for name, _, _ in self.procs
        )

    def stop(self) -> None:
        for _, proc, _ in self.procs:
            proc.terminate()
        for _, proc, log in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
            log.close()


def _wait_http(url: str, procs: Processes, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:  # refused while starting, or a slow first answer
            time.sleep(0.2)
    raise AssertionError(f"{url} did not come up\n{procs.logs()}")


def _login(base: str, username: str) -> tuple[requests.Session, str, str]:
    s = requests.Session()
    page = s.get(f"{base}/login").text
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    r = s.post(
        f"{base}/login", data={"csrf_token": token, "username": username, "password": PASSWORD}
    )
    assert r.url.endswith("/cashier/"), r.text[:500]
    key = re.search(r'<input[^>]*name="idempotency_key"[^>]*value="([^"]+)"', r.text).group(1)
    return s, token, key


def _send_many(base: str, jobs: list[tuple[str, int]]) -> list[str]:
    """Send payments through the real form from several logged-in cashier sessions."""
    errors: list[str] = []
    lock = threading.Lock()
    chunks = [jobs[i::SESSIONS] for i in range(SESSIONS)]

    def run(chunk, session):
        s, token, key = session
        for phone, amount in chunk:
            r = s.post(
                f"{base}/cashier/payments",
                data={
                    "csrf_token": token,
                    "phone": phone,
                    "amount": str(amount),
                    "idempotency_key": key,
                },
                headers={"HX-Request": "true", "X-CSRFToken": token},
                timeout=60,
            )
            found = re.search(r'<input[^>]*name="idempotency_key"[^>]*value="([^"]+)"', r.text)
            row = re.search(r'id="payment-(\d+)"', r.text)
            if r.status_code != 200 or "hx-swap-oob" not in r.text or not found or not row:
                with lock:
                    errors.append(f"{phone} {amount}: HTTP {r.status_code} {r.text[:200]}")
                return
            key = found.group(1)
            # The new row then asks for its push, as the browser does (hx-trigger="load").
            sent = s.post(
                f"{base}/cashier/payments/{row.group(1)}/send",
                headers={"HX-Request": "true", "X-CSRFToken": token},
                timeout=60,
            )
            if sent.status_code != 200:
                with lock:
                    errors.append(f"{phone} {amount}: send HTTP {sent.status_code}")
                return

    # Half the sessions are the cashier of the first till, half the one of the second. They
    # sign in one after another: sign-ins are throttled per address (app/auth/throttle.py).
    sessions = [_login(base, "cashier" if i % 2 == 0 else "cashier2") for i in range(SESSIONS)]
    threads = [
        threading.Thread(target=run, args=(c, s)) for c, s in zip(chunks, sessions, strict=True)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    return errors


def test_two_workers_two_schedulers_one_postgres(pg_url, tmp_path):
    app_port, sim_port = free_port(), free_port()
    key = Fernet.generate_key().decode()
    env = {
        **os.environ,
        "PESADESK_DATABASE_URL": pg_url,
        "PESADESK_SECRET_KEY": "multi-process-secret",
        "PESADESK_ENCRYPTION_KEY": key,
        # The second till is another Daraja app on another shortcode.
        "PESADESK_SIMULATOR_CREDENTIALS": json.dumps(
            [["pesadesk-demo-key", "pesadesk-demo-secret"], [SECOND_KEY, SECOND_SECRET]]
        ),
        "PESADESK_SIMULATOR_PASSKEYS": json.dumps(
            {"174379": SANDBOX_PASSKEY, SECOND_SHORTCODE: SECOND_PASSKEY}
        ),
        "PESADESK_INSTANCE_PATH": str(tmp_path / "instance"),
        "PESADESK_DEMO": "1",
        "PESADESK_DEMO_PASSWORD": PASSWORD,
        "PESADESK_BASE_URL": f"http://127.0.0.1:{app_port}",
        "PESADESK_SIMULATOR_URL": f"http://127.0.0.1:{sim_port}/simulator",
        "PESADESK_SIMULATOR_CALLBACK_DELAY": "1.5",
        "PESADESK_QUERY_FIRST_DELAY": "3",
        "PESADESK_POLL_INTERVAL": "1",
        "PESADESK_RECONCILE_JOB_INTERVAL": "2",
        "PESADESK_GIVE_UP_AFTER": "600",
        "PESADESK_PROMPTS_PER_PHONE_PER_MINUTE": "0",
    }
    flask = [sys.executable, "-m", "flask", "--app", "wsgi"]
    subprocess.run(
        [*flask, "db", "upgrade"], cwd=ROOT, env=env, check=True, capture_output=True, timeout=120
    )
    subprocess.run(
        [*flask, "demo", "seed"], cwd=ROOT, env=env, check=True, capture_output=True, timeout=60
    )
    engine = sa.create_engine(_psycopg_url(pg_url))
    try:
        with engine.begin() as conn:
            _add_second_shop(conn, Fernet(key))
            # The default budget (2 queries/s) would make this test crawl; tested apart.
            conn.execute(sa.text("UPDATE tills SET query_budget_per_s = 100"))
    except BaseException:
        engine.dispose()  # the finally below is not reached yet
        raise

    procs = Processes(tmp_path, env)
    try:
        procs.start("simulator", *flask, "simulator", "run", "--port", str(sim_port))
        procs.start(
            "gunicorn",
            sys.executable,
            "-m",
            "gunicorn",
            "--workers",
            "2",
            "--threads",
            "8",
            "--bind",
            f"127.0.0.1:{app_port}",
            "wsgi:app",
        )
        procs.start("scheduler-1", *flask, "jobs", "run")
        procs.start("scheduler-2", *flask, "jobs", "run")
        base = f"http://127.0.0.1:{app_port}"
        sim = f"http://127.0.0.1:{sim_port}/simulator"
        _wait_http(f"{base}/login", procs)
        _wait_http(f"{sim}/_control/pushes", procs)

        amounts = list(MIX)
        jobs = [(f"07{11000000 + i:08d}", amounts[i % len(amounts)]) for i in range(PAYMENTS)]
        errors = _send_many(base, jobs)
        assert errors == [], errors[:5]

        expected = {f"2547{11000000 + i:08d}"[:12]: MIX[a] for i, (_, a) in enumerate(jobs)}
        deadline = time.monotonic() + 120
        while True:
            with engine.connect() as conn:
                rows = conn.execute(
                    sa.text("SELECT id, phone, status, result_code FROM payments")
                ).all()
            done = [r for r in rows if r.status in ("paid", "failed")]
            if len(rows) == PAYMENTS and len(done) == PAYMENTS:
                break
            if time.monotonic() > deadline:
                states = Counter(r.status for r in rows)
                raise AssertionError(f"not settled: {states}\n{procs.logs()}")
            time.sleep(1)

        # Every payment ends where its scenario says.
        wrong = [
            (r.phone, r.status, r.result_code, expected[r.phone])
            for r in rows
            if (r.status, r.result_code) != expected[r.phone]
        ]
        assert wrong == []

        with engine.connect() as conn:
            # No event appended twice: one final transition per payment.
            finals = conn.execute(
                sa.text(
                    "SELECT payment_id, count(*) FROM payment_events"
                    " WHERE to_status IN ('paid', 'failed')"
                    " AND from_status NOT IN ('paid', 'failed')"
                    " GROUP BY payment_id"
                )
            ).all()
            assert len(finals) == PAYMENTS and {n for _, n in finals} == {1}
            dupes = conn.execute(
                sa.text(
                    "SELECT payment_id, idem_key, count(*) FROM payment_events"
                    " GROUP BY payment_id, idem_key HAVING count(*) > 1"
                )
            ).all()
            assert dupes == []
            # Our query log: one row per (payment, slot), written before each query.
            logged = dict(
                conn.execute(
                    sa.text(
                        "SELECT p.checkout_request_id, count(q.id) FROM payments p"
                        " JOIN payment_queries q ON q.payment_id = p.id"
                        " GROUP BY p.checkout_request_id"
                    )
                ).all()
            )
            workers = conn.execute(
                sa.text("SELECT count(DISTINCT worker) FROM payment_queries")
            ).scalar()
            token_fetches = conn.execute(sa.text("SELECT fetch_count FROM daraja_tokens")).all()

        # Lost callbacks exist, so the schedulers must have queried; every query the simulator
        # received is one we logged, so no payment was queried twice for one slot.
        assert logged, "no STK query was sent"
        stats = requests.get(f"{sim}/_control/stats", timeout=5).json()
        assert stats["queries_by_checkout"] == logged
        assert workers >= 1
        print(  # figures for the run log
            f"\nmultiprocess: {PAYMENTS} payments, {sum(logged.values())} queries for "
            f"{len(logged)} payments from {workers} scheduler process(es), "
            f"{stats['tokens_issued']} OAuth token(s)"
        )
        # One OAuth request per till, across 2 workers and 2 schedulers.
        assert stats["tokens_issued"] == 2
        assert [n for (n,) in token_fetches] == [1, 1]
        with engine.connect() as conn:
            per_till = dict(
                conn.execute(sa.text("SELECT till_id, count(*) FROM payments GROUP BY 1")).all()
            )
            misrouted = conn.execute(
                sa.text(
                    "SELECT count(*) FROM raw_callbacks r JOIN payments p ON p.id = r.payment_id"
                    " WHERE r.till_id <> p.till_id"
                )
            ).scalar()
        assert sorted(per_till.values()) == [PAYMENTS // 2, PAYMENTS // 2], per_till
        assert misrouted == 0
    finally:
        procs.stop()
        engine.dispose()
