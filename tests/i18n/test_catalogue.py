"""The Swahili catalogue is complete for every cashier-facing string, and its .mo is up to date."""

from __future__ import annotations

import re
from pathlib import Path

from babel.messages.extract import DEFAULT_KEYWORDS, extract
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = ROOT / "translations" / "sw" / "LC_MESSAGES"
KEYWORDS = {**DEFAULT_KEYWORDS, "lazy_gettext": None, "_l": None, "N_": None}

#: Everything a cashier can see: the counter, receipts, login, errors, the layout, and every
#: message the payment modules can put on a row (result codes included).
CASHIER_FACING = [
    *sorted((ROOT / "templates" / "cashier").glob("*.html")),
    *sorted((ROOT / "templates" / "auth").glob("*.html")),
    ROOT / "templates" / "base.html",
    ROOT / "templates" / "error.html",
    ROOT / "templates" / "_error.html",
    *sorted((ROOT / "app" / "cashier").glob("*.py")),
    *sorted((ROOT / "app" / "auth").glob("*.py")),
    ROOT / "app" / "payments" / "messages.py",
    ROOT / "app" / "payments" / "rules.py",
    ROOT / "app" / "payments" / "guards.py",
    ROOT / "app" / "payments" / "resend.py",
    ROOT / "app" / "payments" / "service.py",
    ROOT / "app" / "errors.py",
    ROOT / "app" / "filters.py",
]
PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def extract_msgids(paths: list[Path]) -> dict[str, str]:
    """msgid → where it was found, using Babel's own extractors (as pybabel extract does)."""
    found: dict[str, str] = {}
    for path in paths:
        method = "jinja2" if path.suffix == ".html" else "python"
        with path.open("rb") as fileobj:
            for lineno, message, _comments, _context in extract(method, fileobj, keywords=KEYWORDS):
                msgid = message[0] if isinstance(message, tuple) else message
                found.setdefault(msgid, f"{path.relative_to(ROOT)}:{lineno}")
    return found


def load_catalogue():
    with (CATALOGUE / "messages.po").open("rb") as f:
        return read_po(f, locale="sw")


def untranslated(msgids: dict[str, str], catalogue) -> list[str]:
    """Every msgid with no usable Swahili: missing, empty, fuzzy, or with wrong placeholders."""
    problems = []
    for msgid, where in sorted(msgids.items()):
        message = catalogue.get(msgid)
        if message is None or not message.string:
            problems.append(f"{where}: no Swahili for {msgid!r}")
        elif message.fuzzy:
            problems.append(f"{where}: fuzzy Swahili for {msgid!r}")
        elif set(PLACEHOLDER.findall(msgid)) != set(PLACEHOLDER.findall(message.string)):
            problems.append(f"{where}: placeholders differ for {msgid!r}")
    return problems


def test_every_cashier_facing_string_has_swahili():
    msgids = extract_msgids(CASHIER_FACING)
    assert len(msgids) > 100  # the extraction really found the screens' strings
    assert "Customer cancelled on their phone." in msgids  # messages.py, through N_
    assert "Send prompt" in msgids  # a template
    problems = untranslated(msgids, load_catalogue())
    assert problems == [], "\n".join(problems)


def test_the_check_catches_a_missing_translation():
    catalogue = load_catalogue()
    catalogue.delete("Send prompt")
    fake = {"Send prompt": "templates/cashier/_pay_form.html:1", "Paid": "x:1"}
    assert untranslated(fake, catalogue) == [
        "templates/cashier/_pay_form.html:1: no Swahili for 'Send prompt'"
    ]


def test_the_check_catches_broken_placeholders():
    catalogue = load_catalogue()
    catalogue["Today at %(till)s"].string = "Leo katika duka"
    problems = untranslated({"Today at %(till)s": "x:1"}, catalogue)
    assert problems == ["x:1: placeholders differ for 'Today at %(till)s'"]


def test_the_compiled_mo_matches_the_po():
    po = {m.id: m.string for m in load_catalogue() if m.id and not m.fuzzy}
    with (CATALOGUE / "messages.mo").open("rb") as f:
        mo = {m.id: m.string for m in read_mo(f) if m.id}
    assert mo == po, "run: pybabel compile -d translations -l sw"


def test_no_obsolete_or_unused_entries_pile_up():
    every = extract_msgids(
        sorted((ROOT / "app").rglob("*.py")) + sorted((ROOT / "templates").rglob("*.html"))
    )
    unused = sorted(m.id for m in load_catalogue() if m.id and m.id not in every)
    assert unused == []
    assert not load_catalogue().obsolete
