"""Browser layer: the real server as a subprocess, driven by Playwright in Debian's Chromium."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "_artifacts"
DEMO_PASSWORD = "browser-demo-pw"


def _flask(env: dict[str, str], *args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", *args],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
        **kw,
    )


@pytest.fixture
def server(backend, tmp_path, request):
    """`make run`'s steps (migrate, seed, serve) on a free port, on SQLite or PostgreSQL."""
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
    if backend == "postgresql":
        env["PESADESK_DATABASE_URL"] = request.getfixturevalue("pg_database")
        _reset_pg(env["PESADESK_DATABASE_URL"])
    _flask(env, "db", "upgrade")
    _flask(env, "demo", "seed")
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
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _reset_pg(url: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine("postgresql+psycopg://" + url.split("://", 1)[1])
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA public CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail("Debian's chromium is not installed (`make test` installs it).", pytrace=False)
    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=executable,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield b
        b.close()


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
