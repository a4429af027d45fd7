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
    """Create a user (the first admin of a production install, for example).

    The username and password rules are the web form's (app/auth/passwords.py)."""
    from sqlalchemy.exc import IntegrityError

    from app import audit
    from app.auth.passwords import password_problem, username_problem
    from app.extensions import db
    from app.models import AuditAction, User

    username = username.strip()
    problem = username_problem(username)
    if problem:
        raise click.ClickException(f"username {username!r}: {problem}")
    problem = password_problem(password, username)
    if problem:
        raise click.ClickException(f"password: {problem}")
    user = User(username=username, role=role)
    user.set_password(password)
    db.session.add(user)
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        raise click.ClickException(f"username {username!r}: That username is taken.") from None
    audit.record(
        AuditAction.USER_CREATED,
        target=audit.target_of("user", user.id),
        detail={"username": username, "role": role, "by": "cli"},
    )
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


secrets_cli = AppGroup(
    "secrets", help="Secrets stored encrypted with PESADESK_ENCRYPTION_KEY (key rotation)."
)


def _key_counts(positions: list[int | None], n_keys: int) -> str:
    """e.g. "key 0: 2, key 1: 1" (and how many no key decrypts, if any)."""
    text = ", ".join(f"key {k}: {positions.count(k)}" for k in range(n_keys))
    missing = positions.count(None)
    return text + (f"; no key: {missing}" if missing else "")


@secrets_cli.command("rotate")
@with_appcontext
def secrets_rotate() -> None:
    """Re-encrypt every stored secret with the newest key (the first one listed).

    One transaction: if any value cannot be decrypted with the configured keys, nothing is
    written. Cached Daraja tokens are re-encrypted like the rest, so no till has to fetch a
    new token (which would invalidate the one other processes hold).
    """
    from sqlalchemy import update

    from app import audit, crypto
    from app.extensions import db
    from app.models import AuditAction

    keyring = crypto.fernet()
    n_keys = len(crypto.keys())
    plan: list[tuple[crypto.StoredSecret, bytes]] = []
    counts: dict[str, int] = {}
    lines: list[str] = []
    unreadable: list[str] = []
    for column in crypto.encrypted_columns():
        # Row locks keep a concurrent writer from slipping a value under an old key between
        # our read and our write (SQLite has none: the compare-and-set below covers it).
        stored = crypto.stored_secrets(column, lock=True)
        positions = [crypto.key_position(secret.value) for secret in stored]
        unreadable += [s.where for s, pos in zip(stored, positions, strict=True) if pos is None]
        plan += [
            (s, keyring.rotate(s.value))
            for s, pos in zip(stored, positions, strict=True)
            if pos is not None
        ]
        name = f"{column.table.name}.{column.name}"
        counts[name] = len(stored)
        lines.append(f"{name}: {len(stored)} re-encrypted (was {_key_counts(positions, n_keys)})")
    if unreadable:
        db.session.rollback()
        raise click.ClickException(
            f"{len(unreadable)} stored value(s) cannot be decrypted with any configured key; "
            "nothing was changed. Add the key they were encrypted with to "
            "PESADESK_ENCRYPTION_KEY (after the newest) or enter those secrets again:\n  "
            + "\n  ".join(unreadable)
        )
    for secret, new_value in plan:
        table = secret.table
        # Re-encrypting is not an edit: keep "updated_at"-style columns as they were.
        unchanged = {c.name: c for c in table.columns if c.onupdate is not None}
        done = db.session.execute(
            update(table)
            .where(*(table.c[k] == v for k, v in secret.row.items()))
            .where(secret.column == secret.value)
            .values({**unchanged, secret.column.name: new_value})
        ).rowcount
        if done != 1:
            db.session.rollback()
            raise click.ClickException(
                f"{secret.where} changed while rotating; nothing was changed, run it again."
            )
    audit.record(AuditAction.KEYS_ROTATED, detail={"by": "cli", "reencrypted": counts})
    db.session.commit()
    for line in lines:
        click.echo(line)
    click.echo(
        f"Re-encrypted {len(plan)} value(s) with key 0 (the newest of {n_keys}). "
        "Run `flask --app wsgi secrets check` before removing older keys."
    )


@secrets_cli.command("check")
@with_appcontext
def secrets_check() -> None:
    """Say which key decrypts each stored secret (0 = the newest); exit 1 if one decrypts with
    none, so an operator knows when an older key can be removed."""
    from app import crypto

    n_keys = len(crypto.keys())
    positions: list[int | None] = []
    unreadable: list[str] = []
    for column in crypto.encrypted_columns():
        stored = crypto.stored_secrets(column)
        found = [crypto.key_position(secret.value) for secret in stored]
        positions += found
        unreadable += [s.where for s, pos in zip(stored, found, strict=True) if pos is None]
        name = f"{column.table.name}.{column.name}"
        click.echo(f"{name}: {len(stored)} stored; {_key_counts(found, n_keys)}")
    for where in unreadable:
        click.echo(f"cannot be decrypted: {where}")
    older = sum(1 for pos in positions if pos)
    if unreadable:
        raise click.ClickException(
            f"{len(unreadable)} stored value(s) decrypt with none of the {n_keys} configured "
            "key(s): add the key they were encrypted with, or enter those secrets again."
        )
    if older:
        click.echo(
            f"{older} value(s) still need an older key: run `flask --app wsgi secrets rotate`, "
            "and keep the older keys until this check says otherwise."
        )
    elif n_keys > 1:
        click.echo(
            "Every stored secret decrypts with key 0 (the newest): the other keys can be "
            "removed from PESADESK_ENCRYPTION_KEY."
        )
    else:
        click.echo("Every stored secret decrypts with key 0 (the only key).")


def register_cli(app: Flask) -> None:
    app.cli.add_command(demo_cli)
    app.cli.add_command(jobs_cli)
    app.cli.add_command(callbacks_cli)
    app.cli.add_command(users_cli)
    app.cli.add_command(payments_cli)
    app.cli.add_command(secrets_cli)
    if app.config["SIMULATOR_ENABLED"]:
        try:
            from app.simulator.cli import simulator_cli
        except ImportError:  # the standalone command is optional
            return
        app.cli.add_command(simulator_cli)
