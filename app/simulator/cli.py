"""`flask simulator run`: serve the Daraja simulator standalone on 127.0.0.1."""

from __future__ import annotations

import threading
from collections.abc import Callable

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from app.simulator.server import check_bind_host, create_simulator_app, serve_in_thread
from app.simulator.settings import DEFAULTS

simulator_cli = AppGroup("simulator", help="Built-in Daraja simulator.")


def host_guard(host: Flask) -> Callable[[], str | None] | None:
    """The host app's SIMULATOR_GUARD, run inside the host app (it reads the host database)."""
    guard = host.config.get("SIMULATOR_GUARD")
    if not callable(guard):
        return None

    def check() -> str | None:
        with host.app_context():
            return guard()

    return check


def wait_forever() -> None:
    """Block the CLI until Ctrl-C; separate so tests can replace it."""
    threading.Event().wait()


@simulator_cli.command("run")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", default=8700, show_default=True, type=int, help="TCP port.")
@click.option("--allow-remote", is_flag=True, help="Allow binding to a non-loopback address.")
def run_command(host: str, port: int, allow_remote: bool) -> None:
    """Serve the simulator on its own port, reusing this app's SIMULATOR_* settings."""
    try:
        check_bind_host(host, allow_remote)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    config = {key: current_app.config[key] for key in DEFAULTS if key in current_app.config}
    # The standalone simulator must stay off while a till is in production, like the embedded one.
    config["SIMULATOR_GUARD"] = host_guard(current_app._get_current_object())  # type: ignore[attr-defined]
    running = serve_in_thread(create_simulator_app(config), host, port, allow_remote=allow_remote)
    click.echo(f"Daraja simulator at {running.base_url} (Ctrl-C to stop)")
    try:
        wait_forever()
    except KeyboardInterrupt:
        pass
    finally:
        running.shutdown()
