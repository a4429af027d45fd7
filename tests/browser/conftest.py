"""Browser layer: the real server as a subprocess, driven by Playwright in Debian's Chromium."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "_artifacts"
DEMO_PASSWORD = "browser-demo-pw"


PREPARE = """
from flask_migrate import upgrade
from wsgi import app
from app.demo import seed_demo

with app.app_context():
    upgrade()
    seed_demo()
"""


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "server_env(**env): extra PESADESK_* variables for this test's server "
        "(e.g. a longer simulator delay, a short poller delay)",
    )


@dataclass(frozen=True)
class LiveServer:
    """The running server: its base URL and the database it writes to."""

    base: str
    database_url: str


@pytest.fixture
def live_server(backend, tmp_path, request) -> LiveServer:
    """`make run`'s steps (migrate, seed, serve) on a free port, on SQLite or PostgreSQL.

    A test marked `@pytest.mark.server_env(NAME="value", ...)` gets those variables too.
    """
    port = free_port()
    env = {
        **os.environ,
        "PESADESK_DEMO": "1",
        "PESADESK_DEMO_PASSWORD": DEMO_PASSWORD,
        "PESADESK_INSTANCE_PATH": str(tmp_path / "instance"),
        "PORT": str(port),
        "PESADESK_SIMULATOR_CALLBACK_DELAY": "2",
        "PESADESK_POLL_INTERVAL": "1",
    }
    marker = request.node.get_closest_marker("server_env")
    if marker is not None:
        env.update({name: str(value) for name, value in marker.kwargs.items()})
    if backend == "postgresql":
        env["PESADESK_DATABASE_URL"] = request.getfixturevalue("pg_database")
        _reset_pg(env["PESADESK_DATABASE_URL"])
    database_url = env.get("PESADESK_DATABASE_URL") or (
        f"sqlite:///{tmp_path / 'instance' / 'pesadesk.db'}"
    )
    # `flask db upgrade` then `flask demo seed`, in one interpreter (a second start costs ~1 s).
    subprocess.run(
        [sys.executable, "-c", PREPARE],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    log = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "wsgi", "demo", "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if requests.get(f"{base}/login", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((tmp_path / "server.log").read_text())
            time.sleep(0.2)
        yield LiveServer(base, database_url)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture
def server(live_server: LiveServer) -> str:
    """The base URL of a freshly started server (see `live_server`)."""
    return live_server.base


def db_engine(database_url: str):
    """An engine on the server's own database, for tests that must age or inspect rows."""
    import sqlalchemy as sa

    if database_url.startswith("postgresql://"):
        database_url = "postgresql+psycopg://" + database_url.split("://", 1)[1]
    return sa.create_engine(database_url)


def _reset_pg(url: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine("postgresql+psycopg://" + url.split("://", 1)[1])
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA public CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA public"))
    engine.dispose()


# One Chromium for the whole run. Playwright's sync API cannot be started twice at once, and
# other test packages re-export this fixture (each re-export is its own session fixture), so
# the running browser is shared and closed when its last user is done.
_chromium: dict = {"users": 0}


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    if _chromium["users"] == 0:
        executable = shutil.which("chromium")
        if executable is None:
            pytest.fail(
                "Debian's chromium is not installed (`make test` installs it).", pytrace=False
            )
        playwright = sync_playwright().start()
        _chromium["playwright"] = playwright
        _chromium["browser"] = playwright.chromium.launch(
            executable_path=executable,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
    _chromium["users"] += 1
    try:
        yield _chromium["browser"]
    finally:
        _chromium["users"] -= 1
        if _chromium["users"] == 0:
            _chromium.pop("browser").close()
            _chromium.pop("playwright").stop()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    pg = context.new_page()
    pg.set_default_timeout(15_000)
    yield pg
    context.close()


def login(page, base: str, username: str) -> None:
    page.goto(f"{base}/login")
    page.fill("#username", username)
    page.fill("#password", DEMO_PASSWORD)
    page.press("#password", "Enter")
    page.wait_for_load_state()
