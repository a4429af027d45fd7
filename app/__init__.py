"""Application factory: load config, bind extensions, register blueprints and commands."""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet
from flask import Flask

from app.config import from_env
from app.extensions import babel, csrf, db, login_manager, migrate

ROOT = Path(__file__).resolve().parent.parent


def _instance_secret(app: Flask, name: str, make: Any) -> str:
    """Demo installs keep generated keys in instance/ so a restart keeps sessions and secrets."""
    path = Path(app.instance_path) / name
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = make()
    path.write_text(value)
    path.chmod(0o600)
    return value


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the PesaDesk Flask app; `test_config` overrides the environment."""
    app = Flask(
        __name__,
        instance_path=os.environ.get("PESADESK_INSTANCE_PATH") or str(ROOT / "instance"),
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    app.config.from_mapping(from_env())
    if test_config:
        app.config.from_mapping(test_config)
    _finish_config(app)

    db.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"))
    from app.web_input import register_upload_limits

    register_upload_limits(app)  # before CSRF protection: it reads the body first
    csrf.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please log in."
    from app.i18n import select_locale

    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(ROOT / "translations"))
    babel.init_app(app, locale_selector=select_locale)

    from app import filters
    from app.admin import audit as _audit_pages  # noqa: F401 - adds the audit log pages
    from app.admin import tills as _till_pages  # noqa: F401 - adds the shop and till pages
    from app.admin.views import bp as admin_bp
    from app.auth.views import bp as auth_bp
    from app.callbacks.views import bp as callbacks_bp
    from app.cashier.views import bp as cashier_bp
    from app.cli import register_cli
    from app.errors import register_error_handlers
    from app.owner import backoffice as _back_office  # noqa: F401 - adds takings and payments
    from app.owner import statements as _statement_pages  # noqa: F401 - adds reconciliation
    from app.owner.views import bp as owner_bp
    from app.security import register as register_security
    from app.web_input import register as register_web_input

    filters.register(app)
    register_web_input(app)  # before the blueprints: their <int:...> rules use its converter
    app.register_blueprint(auth_bp)
    app.register_blueprint(cashier_bp)
    app.register_blueprint(owner_bp)
    app.register_blueprint(admin_bp)
    app.register_blueprint(callbacks_bp)
    # Safaricom cannot send a CSRF token; the callback is guarded by its secret URL instead.
    csrf.exempt(callbacks_bp)
    if app.config["SIMULATOR_ENABLED"]:
        from app.payments.tills import simulator_forbidden_reason
        from app.simulator import bp as simulator_bp

        # Read by the simulator before every request (it cannot import the database itself).
        app.config.setdefault("SIMULATOR_GUARD", simulator_forbidden_reason)

        app.register_blueprint(simulator_bp, url_prefix="/simulator")
        csrf.exempt(simulator_bp)
    register_error_handlers(app)
    register_security(app)
    register_cli(app)
    _trust_proxies(app)
    return app


def _trust_proxies(app: Flask) -> None:
    """Behind PESADESK_TRUSTED_PROXIES proxies, the client address, scheme and host are the
    ones they forward (callback allowlist, audit log, HTTPS cookies); with none, nothing a
    client sends in X-Forwarded-* is believed."""
    from werkzeug.middleware.proxy_fix import ProxyFix

    from app.callbacks.guard import check_setting

    problem = check_setting(app.config["CALLBACK_ALLOWED_IPS"])
    if problem:
        raise RuntimeError(problem)
    hops = app.config["TRUSTED_PROXIES"]
    if hops > 0:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)


def _finish_config(app: Flask) -> None:
    cfg = app.config
    if not cfg.get("SQLALCHEMY_DATABASE_URI"):
        Path(app.instance_path).mkdir(parents=True, exist_ok=True)
        cfg["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{Path(app.instance_path) / 'pesadesk.db'}"
    uri = cfg["SQLALCHEMY_DATABASE_URI"]
    if uri.startswith("postgresql://") or uri.startswith("postgres://"):
        # psycopg 3 is the driver we install; plain postgresql:// would ask for psycopg2.
        cfg["SQLALCHEMY_DATABASE_URI"] = "postgresql+psycopg://" + uri.split("://", 1)[1]
    options = dict(cfg.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
    # A connection the database dropped (a restart, a failover) is replaced before use, so the
    # first request after a database restart is not an error.
    options.setdefault("pool_pre_ping", True)
    if uri.startswith("sqlite"):
        # Callback, poller and web requests write concurrently; wait for the lock, don't fail.
        options.setdefault("connect_args", {"timeout": 15})
    cfg["SQLALCHEMY_ENGINE_OPTIONS"] = options
    if not cfg.get("SECRET_KEY"):
        if not (cfg["DEMO"] or cfg.get("TESTING")):
            raise RuntimeError("Set PESADESK_SECRET_KEY (see README, Configuration).")
        cfg["SECRET_KEY"] = _instance_secret(app, "secret_key", lambda: secrets.token_hex(32))
    from app.crypto import check_keys, split_keys, startup_message

    if not split_keys(cfg.get("ENCRYPTION_KEY")):
        if not (cfg["DEMO"] or cfg.get("TESTING")):
            raise RuntimeError(startup_message(check_keys(None)))
        cfg["ENCRYPTION_KEY"] = _instance_secret(
            app, "encryption_key", lambda: Fernet.generate_key().decode()
        )
    # Checked in every mode: a bad key would otherwise surface only at the first payment, and
    # a demo cannot replace a configured key without orphaning what it encrypted.
    if key_problems := check_keys(cfg["ENCRYPTION_KEY"]):
        raise RuntimeError(startup_message(key_problems))
    cfg["MAX_CONTENT_LENGTH"] = max(cfg["CALLBACK_MAX_BYTES"], 1024 * 1024)
    # A CSRF token lives as long as the login session: a counter left open for hours must
    # still send (the session itself ends at logout or when the browser closes).
    cfg.setdefault("WTF_CSRF_TIME_LIMIT", None)
    # Assigned, not setdefault: Flask's defaults already hold these keys (SAMESITE is None).
    # Lax: a link from elsewhere still opens the counter logged in, but no other site can
    # post a form with the cookie. Secure only when the site is served over HTTPS.
    https = cfg["BASE_URL"].startswith("https://")
    for cookie in ("SESSION_COOKIE", "REMEMBER_COOKIE"):  # Flask-Login's, should login remember
        cfg[f"{cookie}_HTTPONLY"] = True
        cfg[f"{cookie}_SAMESITE"] = "Lax"
        cfg[f"{cookie}_SECURE"] = https
    logging.getLogger("app").setLevel(logging.INFO)
