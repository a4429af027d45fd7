"""Error pages, with a small inline fragment for htmx requests; never a bare 500 for an outage."""

from __future__ import annotations

import logging

from flask import Flask, render_template
from flask_babel import gettext
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException, ServiceUnavailable

from app.extensions import database_unavailable, db
from app.htmx import is_htmx
from app.i18n import N_

log = logging.getLogger(__name__)

DATABASE_DOWN = N_(
    "The database is not answering, so nothing was sent or changed. Try again in a moment."
)


def _render(error: HTTPException | None, code: int):
    template = "_error.html" if is_htmx() else "error.html"
    return render_template(template, error=error), code


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        return _render(exc, exc.code or 500)

    @app.errorhandler(SQLAlchemyError)
    def database_error(exc: SQLAlchemyError):
        try:
            db.session.rollback()
        except SQLAlchemyError:
            pass  # the connection is gone; the pool replaces it (pool_pre_ping)
        if database_unavailable(exc):
            log.error("database unavailable: %s", exc.__class__.__name__)
            return _render(ServiceUnavailable(gettext(DATABASE_DOWN)), 503)
        log.exception("database error")
        return _render(None, 500)

    @app.errorhandler(500)
    def server_error(exc: Exception):
        try:
            db.session.rollback()
        except SQLAlchemyError:
            pass
        return _render(None, 500)
