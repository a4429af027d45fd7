"""Mounting the blueprint the way the app does in demo mode (CSRF-protected host app)."""

from __future__ import annotations

from flask import Flask
from flask_wtf.csrf import CSRFProtect

from app.simulator import bp
from app.simulator.state import EXTENSION_KEY, SimulatorState, get_state


def _host_app() -> tuple[Flask, CSRFProtect]:
    app = Flask(__name__)
    app.config.update(SECRET_KEY="test-only", SIMULATOR_CALLBACK_DELAY=30)
    csrf = CSRFProtect(app)

    @app.post("/protected")
    def protected() -> str:
        return "ok"

    app.register_blueprint(bp, url_prefix="/simulator")
    csrf.exempt(bp)
    return app, csrf


def test_blueprint_works_inside_a_csrf_protected_app(daraja_for):
    app, _ = _host_app()
    daraja = daraja_for(app)
    try:
        assert app.test_client().post("/protected").status_code == 400  # CSRF still on
        checkout = daraja.pushed()
        assert daraja.control("GET", "pushes").get_json()[0]["checkout_request_id"] == checkout
    finally:
        get_state(app).reset()


def test_each_app_gets_its_own_state_created_at_registration():
    first, _ = _host_app()
    second, _ = _host_app()
    assert isinstance(first.extensions[EXTENSION_KEY], SimulatorState)
    assert first.extensions[EXTENSION_KEY] is not second.extensions[EXTENSION_KEY]
    assert get_state(first) is first.extensions[EXTENSION_KEY]
