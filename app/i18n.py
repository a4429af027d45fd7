"""Languages: English by default, Swahili for users who choose it (Flask-Babel catalogues)."""

from __future__ import annotations

from flask import request
from flask_login import current_user

LANGUAGES = {"en": "English", "sw": "Kiswahili"}


# The gettext-style name is deliberate: Babel's extractor is told to look for N_ calls
# (Makefile, `translations`). This is the only marker; every module imports it from here.
def N_(msgid: str) -> str:
    """Mark a message for translation without translating it here (the UI translates it)."""
    return msgid


def select_locale() -> str:
    """The logged-in user's choice; before login, the browser's preference."""
    if current_user and current_user.is_authenticated:
        return current_user.language if current_user.language in LANGUAGES else "en"
    # Accept-Language is ordered by preference; "sw-KE" means Swahili, "en-GB" English.
    for value, _quality in request.accept_languages:
        primary = value.replace("_", "-").split("-")[0].lower()
        if primary in LANGUAGES:
            return primary
    return "en"
