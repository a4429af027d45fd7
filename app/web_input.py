"""Reject what no page of PesaDesk can use, before any view sees it."""

from __future__ import annotations

from collections.abc import Iterable

from flask import Flask, abort, request
from flask_babel import gettext
from werkzeug.routing import IntegerConverter, Map

from app.i18n import N_

#: Ids are PostgreSQL `integer` columns (app/models); a larger number is no row of ours.
ID_MAX = 2**31 - 1
#: These views store the raw body as evidence before parsing it (app/callbacks/views.py):
#: reading it as a form here would consume it, so only their URL and query string are checked.
RAW_BODY_ENDPOINTS = frozenset({"callbacks.stk_callback"})
_FORM_MIMETYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})

NUL_REFUSED = N_(
    "The request contains a NUL character, which no field of PesaDesk accepts. "
    "Check what was typed or pasted, and send it again."
)


class IdConverter(IntegerConverter):
    """`<int:...>` for row ids: ASCII digits only, from 1 to ID_MAX, else the URL is a 404.

    Flask's own converter matches `\\d`, which takes Arabic-Indic and fullwidth digits
    ("/owner/payments/١٢" would open payment 12), and has no upper bound, so an id of 2**31
    reaches PostgreSQL ("integer out of range") or SQLite (OverflowError) as a 500.
    """

    regex = r"[0-9]+"

    def __init__(
        self,
        map: Map,
        fixed_digits: int = 0,
        min: int | None = 1,
        max: int | None = ID_MAX,
        signed: bool = False,
    ) -> None:
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


def _has_nul(pairs: Iterable[tuple[str, str]]) -> bool:
    return any("\x00" in key or "\x00" in value for key, value in pairs)


def refuse_nul() -> None:
    """No page stores or matches a NUL character, and PostgreSQL refuses one in any text
    parameter (a DataError, hence a 500, wherever a view passes it to a query)."""
    path_values = (request.view_args or {}).values()
    if any(isinstance(value, str) and "\x00" in value for value in path_values):
        abort(404)  # an address with a NUL in it names nothing here
    if _has_nul(request.args.items(multi=True)):
        abort(400, gettext(NUL_REFUSED))
    if request.endpoint in RAW_BODY_ENDPOINTS or request.mimetype not in _FORM_MIMETYPES:
        return
    if _has_nul(request.form.items(multi=True)):
        abort(400, gettext(NUL_REFUSED))


def register(app: Flask) -> None:
    """Install the id converter (before any blueprint adds its rules) and the NUL check."""
    app.url_map.converters["int"] = IdConverter
    app.before_request(refuse_nul)


#: endpoint → the largest request body it takes, where that is more than MAX_CONTENT_LENGTH
#: (statements are files; everything else stays small).
UPLOAD_LIMITS = {"owner.upload_statement": 20 * 1024 * 1024 + 64 * 1024}


def register_upload_limits(app: Flask) -> None:
    """Raise the body limit for upload endpoints. Registered before CSRF protection, which
    reads the form (and so enforces the limit) before any view runs."""

    @app.before_request
    def _upload_limit() -> None:
        limit = UPLOAD_LIMITS.get(request.endpoint or "")
        if limit is not None:
            request.max_content_length = limit
