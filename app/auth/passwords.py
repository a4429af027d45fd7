"""The rules for usernames and passwords, in one place: the admin's user forms, the "change my
password" page and `flask users create` all ask these functions.

Strength is judged by zxcvbn (Dropbox's estimator: common passwords, names, words, keyboard
patterns, dates, repeats); a password must score at least MIN_SCORE of 4 and have at least
MIN_LENGTH characters, and must not be the username in any case.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

from flask import has_request_context
from flask_babel import gettext
from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash
from zxcvbn import zxcvbn

from app.extensions import db
from app.i18n import N_
from app.models.user import User, username_key

MIN_LENGTH = 10
MAX_LENGTH = 256
MIN_SCORE = 3
#: zxcvbn refuses longer input; the rest of a longer password only adds strength
_ZXCVBN_MAX = 72
USERNAME_MAX = 64
USERNAME_PATTERN = re.compile(r"[A-Za-z0-9_.-]+")
#: words that make a password guessable here, whoever the user is
_SITE_WORDS = ("pesadesk", "mpesa", "m-pesa", "lipa", "safaricom", "daraja", "till", "paybill")

TOO_SHORT = N_("Use at least %(num)s characters.")
TOO_LONG = N_("Use at most %(num)s characters.")
SAME_AS_USERNAME = N_("The password must not be the username.")
TOO_EASY = N_("This password is too easy to guess.")
USERNAME_EMPTY = N_("Enter a username.")
USERNAME_TOO_LONG = N_("Use at most %(num)s characters for the username.")
USERNAME_CHARACTERS = N_("Use only letters, digits, dots, dashes and underscores.")
USERNAME_TAKEN = N_("That username is taken.")

# zxcvbn's own feedback (zxcvbn/feedback.py), listed so the catalogue can translate it.
ZXCVBN_FEEDBACK = (
    N_("Use a few words, avoid common phrases."),
    N_("No need for symbols, digits, or uppercase letters."),
    N_("Add another word or two. Uncommon words are better."),
    N_("Straight rows of keys are easy to guess."),
    N_("Short keyboard patterns are easy to guess."),
    N_("Use a longer keyboard pattern with more turns."),
    N_('Repeats like "aaa" are easy to guess.'),
    N_('Repeats like "abcabcabc" are only slightly harder to guess than "abc".'),
    N_("Avoid repeated words and characters."),
    N_('Sequences like "abc" or "6543" are easy to guess.'),
    N_("Avoid sequences."),
    N_("Recent years are easy to guess."),
    N_("Avoid recent years."),
    N_("Avoid years that are associated with you."),
    N_("Dates are often easy to guess."),
    N_("Avoid dates and years that are associated with you."),
    N_("This is a top-10 common password."),
    N_("This is a top-100 common password."),
    N_("This is a very common password."),
    N_("This is similar to a commonly used password."),
    N_("A word by itself is easy to guess."),
    N_("Names and surnames by themselves are easy to guess."),
    N_("Common names and surnames are easy to guess."),
    N_("Capitalization doesn't help very much."),
    N_("All-uppercase is almost as easy to guess as all-lowercase."),
    N_("Reversed words aren't much harder to guess."),
    N_("Predictable substitutions like '@' instead of 'a' don't help very much."),
)


def _t(msgid: str, **variables: Any) -> str:
    """Translated in a request (the user's language); plain English in the CLI."""
    if has_request_context():
        return gettext(msgid, **variables)
    return msgid % variables if variables else msgid


def password_problem(password: str, username: str) -> str | None:
    """Why `password` cannot be used by `username`, in words for them; None if it can."""
    if not isinstance(password, str) or len(password) < MIN_LENGTH:
        return _t(TOO_SHORT, num=MIN_LENGTH)
    if len(password) > MAX_LENGTH:
        return _t(TOO_LONG, num=MAX_LENGTH)
    if password.strip().lower() == (username or "").strip().lower():
        return _t(SAME_AS_USERNAME)
    result = zxcvbn(password[:_ZXCVBN_MAX], user_inputs=[username or "", *_SITE_WORDS])
    if result["score"] >= MIN_SCORE:
        return None
    feedback = result["feedback"]
    parts = [_t(TOO_EASY)]
    if feedback.get("warning"):
        parts.append(_t(feedback["warning"]))
    parts.extend(_t(s) for s in feedback.get("suggestions") or [])
    return " ".join(parts)


def username_problem(username: str) -> str | None:
    """Why `username` cannot be given to a new user; None if it can. Names are unique
    regardless of case: "Wanjiku" is taken when "wanjiku" exists."""
    name = (username or "").strip()
    if not name:
        return _t(USERNAME_EMPTY)
    if len(name) > USERNAME_MAX:
        return _t(USERNAME_TOO_LONG, num=USERNAME_MAX)
    if not USERNAME_PATTERN.fullmatch(name):
        return _t(USERNAME_CHARACTERS)
    if find_user(name) is not None:
        return _t(USERNAME_TAKEN)
    return None


def find_user(username: str) -> User | None:
    """The user with this name, whatever its case."""
    return db.session.execute(
        select(User).where(User.username_key == username_key(username)[:USERNAME_MAX])
    ).scalar_one_or_none()


_dummy_hash: str | None = None


def check_without_user(password: str) -> bool:
    """Spend the time a real password check takes, for a name nobody has, so that the answer
    comes as late as for a wrong password. Always False."""
    global _dummy_hash
    if _dummy_hash is None:
        # Hashed as set_password hashes (werkzeug's default method), so it costs the same.
        _dummy_hash = generate_password_hash(secrets.token_urlsafe(16))
    check_password_hash(_dummy_hash, password)
    return False
