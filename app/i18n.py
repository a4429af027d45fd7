"""Languages: English by default, Swahili for users who choose it (Flask-Babel catalogues)."""

from __future__ import annotations

from flask import request
from flask_login import current_user

LANGUAGES = {"en": "English", "sw": "Kiswahili"}


def select_locale() -> str:
    """The logged-in user's choice; before login, the browser's preference."""
    if current_user and current_user.is_authenticated:
        return current_user.language if current_user.language in LANGUAGES else "en"
    return request.accept_languages.best_match(list(LANGUAGES), default="en")
