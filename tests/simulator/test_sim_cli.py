"""The `flask simulator run` command."""

from __future__ import annotations

import pytest
import requests
from flask import current_app

from app.simulator import cli
from app.simulator.server import RunningServer, create_simulator_app


def _invoke(*args: str, **config):
    host_app = create_simulator_app({"SIMULATOR_TOKEN_TTL": 77, **config})
    host_app.cli.add_command(cli.simulator_cli)
    return host_app.test_cli_runner().invoke(args=["simulator", "run", *args])


def test_run_serves_standalone_with_the_apps_settings(monkeypatch):
    started: list[RunningServer] = []
    expires: list[str] = []
    real_serve = cli.serve_in_thread

    def spy_serve(*args, **kwargs) -> RunningServer:
        started.append(real_serve(*args, **kwargs))
        return started[-1]

    def fake_wait() -> None:
        # While the command blocks, the server answers real HTTP with the host app's settings.
        response = requests.get(
            f"{started[0].base_url}/oauth/v1/generate?grant_type=client_credentials",
            auth=("pesadesk-demo-key", "pesadesk-demo-secret"),
            timeout=5,
        )
        expires.append(response.json()["expires_in"])
        raise KeyboardInterrupt  # what Ctrl-C does

    monkeypatch.setattr(cli, "serve_in_thread", spy_serve)
    monkeypatch.setattr(cli, "wait_forever", fake_wait)
    result = _invoke("--port", "0")
    assert result.exit_code == 0, result.output
    [running] = started
    assert running.host == "127.0.0.1"
    assert f"Daraja simulator at {running.base_url}" in result.output
    assert expires == ["77"]
    with pytest.raises(requests.ConnectionError):  # shut down after Ctrl-C
        requests.get(running.base_url + "/", timeout=2)


def test_run_refuses_a_public_bind_without_opt_in(monkeypatch):
    def must_not_serve(*args, **kwargs):
        raise AssertionError("server started")

    monkeypatch.setattr(cli, "serve_in_thread", must_not_serve)
    result = _invoke("--host", "0.0.0.0")  # noqa: S104 - refused before any bind
    assert result.exit_code == 2
    assert "refusing to bind" in result.output


def test_run_keeps_the_host_apps_production_guard(monkeypatch):
    started: list[RunningServer] = []
    answers: list[tuple[int, dict]] = []
    real_serve = cli.serve_in_thread

    def spy_serve(*args, **kwargs) -> RunningServer:
        started.append(real_serve(*args, **kwargs))
        return started[-1]

    def guard() -> str | None:
        # Runs inside the host app (where the database is), not the standalone one.
        return current_app.config["HOST_REASON"]

    def fake_wait() -> None:
        response = requests.get(f"{started[0].base_url}/_control/pushes", timeout=5)
        answers.append((response.status_code, response.json()))
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "serve_in_thread", spy_serve)
    monkeypatch.setattr(cli, "wait_forever", fake_wait)
    result = _invoke("--port", "0", SIMULATOR_GUARD=guard, HOST_REASON="a till is live")
    assert result.exit_code == 0, result.output
    assert answers == [(403, {"error": "a till is live"})]
