"""Error pages, with a small inline fragment for htmx requests."""

from __future__ import annotations

from flask import Flask, render_template
from werkzeug.exceptions import HTTPException

from app.extensions import db
from app.htmx import is_htmx


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        template = "_error.html" if is_htmx() else "error.html"
        return render_template(template, error=exc), exc.code

    @app.errorhandler(500)
    def server_error(exc: Exception):
        db.session.rollback()
        template = "_error.html" if is_htmx() else "error.html"
        return render_template(template, error=None), 500
