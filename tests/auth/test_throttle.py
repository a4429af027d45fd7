"""Sign-in that resists guessing: delays after 5 failures, a lock after 20, kept in the
database (so two apps, two processes, and many threads count together), every attempt audited,
and the same answer after the same work for a name nobody has."""

from __future__ import annotations

import http.client
import os
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlencode

import pytest
import sqlalchemy as sa

from app.auth import throttle
from app.extensions import db
from app.models import AuditAction
from app.models.user import SignInThrottle
from tests.auth.support import (
    STRONG,
    age_failures,
    alert,
    entries,
    forget_failures,
    sign_in,
    user,
)
from tests.helpers import PASSWORD, login

ROOT = Path(__file__).resolve().parents[2]
WRONG = "Wrong username or password."


def test_the_delay_grows_and_is_not_a_sleep():
    assert [throttle.delay_for(n) for n in range(4, 12)] == [0, 1, 2, 4, 8, 16, 32, 64]
    assert throttle.delay_for(15) == 900 and throttle.delay_for(10_000) == 900


def test_five_failures_ask_for_a_wait_and_twenty_lock(client, admin_client):
    for n in range(1, 5):
        r = sign_in(client, "owner", "wrong-guess", "10.0.0.1")
        assert r.status_code == 200 and alert(r) == WRONG, n
    r = sign_in(client, "owner", "wrong-guess", "10.0.0.1")
    assert r.status_code == 200
    assert alert(r) == f"{WRONG} Too many failed sign-ins. Try again in 1 second."
    # Too soon: refused unchecked (even the right password), and counted.
    started = time.monotonic()
    r = sign_in(client, "owner", PASSWORD, "10.0.0.2")
    assert time.monotonic() - started < 1  # answered at once, not slept through
    assert r.status_code == 429 and r.headers["Retry-After"] == "2"
    assert alert(r) == "Too many failed sign-ins. Try again in 2 seconds."
    assert client.get("/owner/report").status_code == 302  # not signed in
    # Waiting long enough lets one more attempt be checked.
    age_failures(2)
    r = sign_in(client, "owner", "wrong-guess", "10.0.0.3")
    assert r.status_code == 200 and alert(r).startswith(WRONG)
    assert alert(r) == f"{WRONG} Too many failed sign-ins. Try again in 4 seconds."  # 2^(7-5)
    # Hammering on: every attempt is refused and counted, up to the lock at 20.
    statuses = Counter()
    for i in range(13):  # failures 8 to 20
        r = sign_in(client, "owner", "wrong-guess", f"10.0.1.{i}")
        statuses[r.status_code] += 1
    assert statuses == {429: 13}
    assert "locked" in alert(r) and "An admin can unlock it" in alert(r)
    rows = {(t.scope, t.key): t for t in db.session.execute(sa.select(SignInThrottle)).scalars()}
    assert rows[("user", "owner")].failures == 20 and rows[("user", "owner")].locked_at
    # Locked: the right password is refused, from anywhere, however long one waits.
    age_failures(30 * 24 * 3600)
    r = sign_in(client, "owner", PASSWORD, "10.9.9.9")
    assert r.status_code == 429 and "locked" in alert(r)
    assert client.get("/owner/report").status_code == 302
    # The admin sees it and unlocks.
    page = admin_client.get("/admin/users").get_data(as_text=True)
    owner = user("owner")
    assert f'id="locked-{owner.id}"' in page
    assert admin_client.post(f"/admin/users/{owner.id}/unlock").status_code == 302
    assert f'id="locked-{owner.id}"' not in admin_client.get("/admin/users").get_data(as_text=True)
    r = sign_in(client, "owner", PASSWORD, "10.9.9.9")
    assert r.status_code == 302 and r.headers["Location"].endswith("/owner/report")
    # Every attempt is in the audit log, with the name typed; the lock and unlock once each.
    failed = entries(AuditAction.SIGN_IN_FAILED)
    assert len(failed) == 21 and {e.detail["username"] for e in failed} == {"owner"}
    assert Counter(e.detail["reason"] for e in failed) == {
        "wrong_password": 6,
        "throttled": 13,
        "locked": 2,
    }
    assert {e.target for e in failed} == {f"user:{owner.id}"}
    assert [e.detail["failures"] for e in entries(AuditAction.SIGN_IN_LOCKED)] == [20]
    [unlocked] = entries(AuditAction.USER_UNLOCKED)
    assert unlocked.actor_name == "admin" and unlocked.target == f"user:{owner.id}"
    signed_in = entries(AuditAction.SIGN_IN)[-1]  # (the admin signed in first)
    assert signed_in.actor_name == "owner" and signed_in.remote_addr == "10.9.9.9"
    assert PASSWORD not in str([e.detail for e in entries()])


def test_a_right_password_clears_the_count(client):
    for _ in range(4):
        sign_in(client, "cashier", "wrong-guess")
    assert sign_in(client, "cashier", PASSWORD).status_code == 302
    client.post("/logout")
    for _ in range(4):  # four more: still no delay, the earlier four are forgotten
        assert sign_in(client, "cashier", "wrong-guess", "10.1.1.1").status_code == 200
    assert sign_in(client, "cashier", PASSWORD, "10.1.1.1").status_code == 302


def test_a_quiet_day_forgets_old_failures(client):
    for _ in range(6):
        sign_in(client, "cashier", "wrong-guess", "10.2.0.1")
    age_failures(25 * 3600)
    r = sign_in(client, "cashier", "wrong-guess", "10.2.0.2")
    assert r.status_code == 200 and alert(r) == WRONG  # counting started again


def test_one_address_trying_many_names_is_slowed_down(client):
    for i in range(5):
        assert sign_in(client, f"nobody{i}", "wrong-guess", "10.3.0.1").status_code == 200
    r = sign_in(client, "owner", PASSWORD, "10.3.0.1")
    assert r.status_code == 429 and "Try again in" in alert(r)
    # The owner, from their own address, is not held up by that.
    assert sign_in(client, "owner", PASSWORD, "10.3.0.2").status_code == 302


def test_a_name_nobody_has_is_answered_like_a_real_one(client):
    """Same words, same status, and the same delays and lock: nothing tells them apart."""
    answers = {}
    for name in ("owner", "no-such-user"):
        seen = []
        for i in range(21):
            r = sign_in(client, name, "wrong-guess", f"10.4.{len(answers)}.{i}")
            seen.append((r.status_code, alert(r)))
        answers[name] = seen
    assert answers["owner"] == answers["no-such-user"]
    assert "locked" in answers["no-such-user"][-1][1]
    [first_failure] = [e for e in entries(AuditAction.SIGN_IN_FAILED)][-21:-20]
    assert first_failure.detail == {
        "username": "no-such-user",
        "reason": "unknown_user",
        "failures": 1,
    }
    assert first_failure.target is None


def test_two_addresses_share_the_account_count(client):
    """Guesses spread over two client addresses still lock the account at 20."""
    outcomes = Counter()
    for i in range(200):
        address = ("192.0.2.10", "198.51.100.20")[i % 2]
        r = sign_in(client, "admin", f"guess-{i}", address)
        if r.status_code == 200:
            outcomes["checked"] += 1
        else:
            outcomes["locked" if "locked" in alert(r) else "wait"] += 1
    print(f"\n200 guesses from 2 addresses (test client): {dict(outcomes)}")
    assert outcomes["checked"] == throttle.DELAY_AFTER
    assert outcomes["checked"] + outcomes["wait"] + outcomes["locked"] == 200
    assert outcomes["locked"] == 200 - throttle.LOCK_AFTER + 1
    r = sign_in(client, "admin", PASSWORD, "203.0.113.7")
    assert r.status_code == 429 and "locked" in alert(r)
    addresses = {e.remote_addr for e in entries(AuditAction.SIGN_IN_FAILED)}
    assert addresses == {"192.0.2.10", "198.51.100.20", "203.0.113.7"}


def test_two_apps_on_one_database_count_together(app, client, database_url, sqlite_dir):
    """The count lives in the database, not in a worker: a second app (another worker, another
    host) sees the failures the first one counted, and the lock."""
    from tests.conftest import make_test_app

    other = make_test_app(database_url, sqlite_dir)
    other_client = other.test_client()
    try:
        for i in range(10):
            sign_in(client, "owner", "wrong-guess", f"10.5.0.{i}")
            sign_in(other_client, "owner", "wrong-guess", f"10.6.0.{i}")
        r = sign_in(other_client, "owner", PASSWORD, "10.7.0.1")
        assert r.status_code == 429 and "locked" in alert(r)
        r = sign_in(client, "owner", PASSWORD, "10.7.0.1")
        assert r.status_code == 429 and "locked" in alert(r)
    finally:
        with other.app_context():
            db.session.remove()
            db.engine.dispose()
    assert len(entries(AuditAction.SIGN_IN_LOCKED)) == 1


_OTHER_PROCESS = """
import sys
from pathlib import Path
from tests.conftest import make_test_app
app = make_test_app(sys.argv[1], Path(sys.argv[2]))
client = app.test_client()
codes = [
    client.post("/login", data={"username": "owner", "password": f"guess-{i}"},
                environ_base={"REMOTE_ADDR": f"10.8.0.{i}"}).status_code
    for i in range(int(sys.argv[3]))
]
print(",".join(map(str, codes)))
"""


def test_another_process_counts_into_the_same_lock(app, client, database_url, sqlite_dir):
    result = subprocess.run(
        [sys.executable, "-c", _OTHER_PROCESS, database_url, str(sqlite_dir), "15"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    codes = result.stdout.strip().splitlines()[-1].split(",")
    assert codes.count("200") == throttle.DELAY_AFTER and len(codes) == 15
    for i in range(4):
        r = sign_in(client, "owner", "wrong-guess", f"10.9.0.{i}")
        assert r.status_code == 429 and "locked" not in alert(r)
    r = sign_in(client, "owner", "wrong-guess", "10.9.0.9")  # the 20th, counted here
    assert "locked" in alert(r)
    assert sign_in(client, "owner", PASSWORD, "10.9.1.1").status_code == 429
    assert len(entries(AuditAction.SIGN_IN_FAILED)) == 15 + 5 + 1


# ---- over real HTTP --------------------------------------------------------------------------
def _post_login(port: int, source: str, username: str, password: str) -> tuple[int, str]:
    """One sign-in over a real TCP connection from `source` (any 127.x address is this host)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30, source_address=(source, 0))
    try:
        conn.request(
            "POST",
            "/login",
            body=urlencode({"username": username, "password": password}),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def _outcome(status: int, body: str) -> str:
    if status == 302:
        return "signed in"
    if "locked after too many failed sign-ins" in body:
        return "refused: locked"
    if status == 429:
        return "refused: wait"
    assert status == 200 and WRONG in body, (status, body[:300])
    return "checked, wrong"


def test_brute_force_over_http_from_two_addresses(live_app, admin_client):
    """200 wrong passwords from two addresses, two threads at once, against the real server:
    5 are checked, the rest are refused unchecked; the account locks at 20; the right
    password is refused until an admin unlocks it."""
    port = int(live_app.config["BASE_URL"].rsplit(":", 1)[1])
    sources = ("127.0.0.1", "127.0.0.2")
    results: list[str] = []
    lock = threading.Lock()

    def attack(source: str, start: int) -> None:
        for i in range(start, 200, 2):
            outcome = _outcome(*_post_login(port, source, "owner", f"guess-{i:03d}"))
            with lock:
                results.append(outcome)

    started = time.monotonic()
    threads = [threading.Thread(target=attack, args=(s, n)) for n, s in enumerate(sources)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    elapsed = time.monotonic() - started
    counts = Counter(results)
    print(
        f"\nbrute force over HTTP: {len(results)} attempts from {len(sources)} addresses in "
        f"{elapsed:.2f} s ({len(results) / elapsed:.0f}/s): {counts['checked, wrong']} checked, "
        f"{counts['refused: wait']} refused by the delay, {counts['refused: locked']} refused "
        f"as locked, {counts['signed in']} signed in"
    )
    assert len(results) == 200 and counts["signed in"] == 0
    assert counts["checked, wrong"] == throttle.DELAY_AFTER
    assert counts["refused: locked"] >= 200 - throttle.LOCK_AFTER
    # Locked: the right password, from a third address, is refused.
    assert _outcome(*_post_login(port, "127.0.0.3", "owner", PASSWORD)) == "refused: locked"
    failed = entries(AuditAction.SIGN_IN_FAILED)
    assert len(failed) == 201
    assert {e.remote_addr for e in failed} == {"127.0.0.1", "127.0.0.2", "127.0.0.3"}
    assert len(entries(AuditAction.SIGN_IN_LOCKED)) == 1
    # The admin unlocks; the right password works (from an address that did not attack).
    owner = user("owner")
    assert admin_client.post(f"/admin/users/{owner.id}/unlock").status_code == 302
    assert _outcome(*_post_login(port, "127.0.0.3", "owner", PASSWORD)) == "signed in"
    # The attacking addresses stay slowed down for a while.
    assert _outcome(*_post_login(port, "127.0.0.2", "owner", PASSWORD)) == "refused: wait"


# ---- the same answer time ------------------------------------------------------------------
def test_an_unknown_name_takes_as_long_as_a_wrong_password(app, client, monkeypatch):
    """Medians over 20 tries each, with a real password hash (the test users' is cheap), and
    a count of the hash checks: a name nobody has must cost one check too."""
    import app.auth.passwords as passwords
    import app.models.user as user_model

    person = user("owner")
    person.set_password(STRONG)  # werkzeug's default method, as for every real user
    db.session.commit()
    calls = Counter()

    def counting(module, name):
        real = module.check_password_hash

        def check(pwhash, password):
            calls[name] += 1
            return real(pwhash, password)

        monkeypatch.setattr(module, "check_password_hash", check)

    counting(passwords, "dummy")
    counting(user_model, "user")

    def timed(username: str) -> float:
        forget_failures()  # judge the password each time, never the throttle
        started = time.perf_counter()
        r = sign_in(client, username, "wrong-guess-123")
        elapsed = time.perf_counter() - started
        assert r.status_code == 200 and alert(r) == WRONG
        return elapsed

    timed("nobody-at-all")  # the first one also makes the dummy hash
    calls.clear()
    wrong = [timed("owner") for _ in range(20)]
    unknown = [timed("nobody-at-all") for _ in range(20)]
    assert calls == {"user": 20, "dummy": 20}
    ratio = statistics.median(unknown) / statistics.median(wrong)
    print(
        f"\nmedian answer: wrong password {statistics.median(wrong) * 1000:.1f} ms, "
        f"unknown name {statistics.median(unknown) * 1000:.1f} ms (ratio {ratio:.2f})"
    )
    assert 1 / 3 < ratio < 3


@pytest.mark.parametrize("reason", ["inactive", "demo"])
def test_refusals_that_need_the_right_password_look_like_a_wrong_one(app, client, reason):
    person = user("owner")
    if reason == "inactive":
        person.active = False
    else:
        person.is_demo = True
        app.config["DEMO"] = False
    db.session.commit()
    r = sign_in(client, "owner", PASSWORD)
    assert r.status_code == 200 and alert(r) == WRONG
    [failed] = entries(AuditAction.SIGN_IN_FAILED)
    expected = {"inactive": "inactive", "demo": "demo_user_outside_demo"}[reason]
    assert failed.detail["reason"] == expected


def test_login_helper_still_works(client):
    login(client, "cashier")  # tests/helpers.py PASSWORD passes the sign-in unchanged
    assert client.get("/cashier/").status_code in (200, 302)


def test_the_right_password_at_the_twentieth_attempt_still_signs_in(client):
    """The 20th attempt is checked if it comes after its wait; right, it clears the count."""
    for i in range(19):
        sign_in(client, "cashier", "wrong-guess", f"10.60.0.{i}")
    age_failures(throttle.MAX_DELAY)
    r = sign_in(client, "cashier", PASSWORD, "10.60.1.1")
    assert r.status_code == 302
    assert (
        db.session.execute(sa.select(SignInThrottle).where(SignInThrottle.scope == "user")).first()
        is None
    )
    client.post("/logout")
    assert sign_in(client, "cashier", PASSWORD, "10.60.1.2").status_code == 302
