"""Flask CLI commands: demo seed/serve, the job runner, and callback reprocessing."""

from __future__ import annotations

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext

demo_cli = AppGroup("demo", help="Demo data and the all-in-one demo server.")
jobs_cli = AppGroup("jobs", help="Background jobs (the status poller).")
callbacks_cli = AppGroup("callbacks", help="The stored callback inbox.")
users_cli = AppGroup("users", help="Dashboard users.")
payments_cli = AppGroup("payments", help="The payment engine.")


@payments_cli.command("diagram")
def payments_diagram() -> None:
    """Print the status diagram (Mermaid) generated from the transition table."""
    from app.payments.states import mermaid

    click.echo(mermaid())


@users_cli.command("create")
@click.argument("username")
@click.option(
    "--role", type=click.Choice(["cashier", "owner", "admin"]), default="admin", show_default=True
)
@click.password_option()
@with_appcontext
def users_create(username: str, role: str, password: str) -> None:
    """Create a user (the first admin of a production install, for example)."""
    from sqlalchemy import select

    from app.extensions import db
    from app.models import User

    if db.session.execute(select(User.id).where(User.username == username)).first():
        raise click.ClickException(f"user {username} already exists")
    if len(password) < 8:
        raise click.ClickException("use a password of 8 characters or more")
    user = User(username=username, role=role)
    user.set_password(password)
    db.session.add(user)
    db.session.commit()
    click.echo(f"Created {role} {username}.")


@demo_cli.command("seed")
@with_appcontext
def demo_seed() -> None:
    """Create the demo till (on the simulator) and the users cashier, owner, admin."""
    from app.demo import seed_demo

    seed_demo()
    click.echo("Demo till and users are ready.")


@demo_cli.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=None, help="Defaults to $PORT or 5000.")
@with_appcontext
def demo_serve(host: str, port: int | None) -> None:
    """Serve the app, the simulator and the poller in one process (demo only)."""
    from apscheduler.schedulers.background import BackgroundScheduler
    from werkzeug.serving import make_server

    from app.demo import demo_password
    from app.jobs import add_jobs

    app = current_app._get_current_object()
    if port and port != app.config["PORT"]:
        # Callback and simulator URLs were built from $PORT; follow the port actually served
        # unless they were configured explicitly.
        import os

        if not os.environ.get("PESADESK_BASE_URL"):
            app.config["BASE_URL"] = f"http://127.0.0.1:{port}"
        if not os.environ.get("PESADESK_SIMULATOR_URL"):
            app.config["SIMULATOR_URL"] = f"{app.config['BASE_URL']}/simulator"
    port = port or app.config["PORT"]
    scheduler = BackgroundScheduler(timezone="UTC")
    add_jobs(app, scheduler)
    scheduler.start()
    password = demo_password(app)
    click.echo(
        f"\n  PesaDesk demo: {app.config['BASE_URL']}/\n"
        f"  Logins (password for all: {password}): cashier, owner, admin\n"
        f"  Simulator: {app.config['SIMULATOR_URL']} (scenarios: docs/simulator.md)\n"
        f"  Virtual phone: {app.config['SIMULATOR_URL']}/phone?phone=0708374149 (PIN 1234)\n"
        "  Try phone 0708374149 and an amount such as 10; amount 1032 is cancelled.\n"
        "  Press Ctrl+C to stop.\n"
    )
    # Threaded: the app calls its own embedded simulator, which calls back into the app.
    server = make_server(host, port, app, threaded=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        click.echo("Stopped.")
    finally:
        scheduler.shutdown(wait=False)


@jobs_cli.command("run")
@with_appcontext
def jobs_run() -> None:
    """Run the scheduler in the foreground (production: its own process beside gunicorn)."""
    from apscheduler.schedulers.blocking import BlockingScheduler

    from app.jobs import JOBS, add_jobs

    scheduler = BlockingScheduler(timezone="UTC")
    add_jobs(current_app._get_current_object(), scheduler)
    click.echo("Running jobs: " + ", ".join(j.id for j in JOBS))
    scheduler.start()


@jobs_cli.command("run-once")
@with_appcontext
def jobs_run_once() -> None:
    """Run every job once, now, and print what each did."""
    from app.jobs import run_once

    for job_id, counts in run_once().items():
        click.echo(f"{job_id}: {counts}")


@callbacks_cli.command("reprocess")
@click.argument("raw_callback_id", type=int)
@with_appcontext
def callbacks_reprocess(raw_callback_id: int) -> None:
    """Apply a stored callback again (safe: applying is idempotent)."""
    from app.callbacks import inbox
    from app.extensions import db
    from app.models import RawCallback

    raw = db.session.get(RawCallback, raw_callback_id)
    if raw is None:
        raise click.ClickException(f"no stored callback {raw_callback_id}")
    click.echo(inbox.process(raw))


def register_cli(app: Flask) -> None:
    app.cli.add_command(demo_cli)
    app.cli.add_command(jobs_cli)
    app.cli.add_command(callbacks_cli)
    app.cli.add_command(users_cli)
    app.cli.add_command(payments_cli)
    if app.config["SIMULATOR_ENABLED"]:
        try:
            from app.simulator.cli import simulator_cli
        except ImportError:  # the standalone command is optional
            return
        app.cli.add_command(simulator_cli)
