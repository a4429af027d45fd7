"""The Swahili catalogue is complete for every string a screen can show, and its .mo is up to
date."""

from __future__ import annotations

import re
from pathlib import Path

from babel.messages.extract import DEFAULT_KEYWORDS, extract
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = ROOT / "translations" / "sw" / "LC_MESSAGES"
KEYWORDS = {**DEFAULT_KEYWORDS, "lazy_gettext": None, "_l": None, "N_": None}

#: Everything any user can see: every template (cashier, owner, admin, sign-in, errors, the
#: layout) and every app module, as `pybabel extract` reads them (babel.cfg). Left out on
#: purpose: the simulator's own pages (app/simulator/templates), which stand in for the
#: customer's phone and Safaricom in the demo; they are not PesaDesk's screens and stay English.
EVERY_SCREEN = [
    *sorted((ROOT / "templates").rglob("*.html")),
    *sorted((ROOT / "app").rglob("*.py")),
]
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")


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
        # A plural message (ngettext) has one string per plural form: every one must be there.
        forms = () if message is None else message.string
        forms = forms if isinstance(forms, tuple) else (forms,)
        if not forms or not all(forms):
            problems.append(f"{where}: no Swahili for {msgid!r}")
        elif message.fuzzy:
            problems.append(f"{where}: fuzzy Swahili for {msgid!r}")
        elif any(set(PLACEHOLDER.findall(msgid)) != set(PLACEHOLDER.findall(f)) for f in forms):
            problems.append(f"{where}: placeholders differ for {msgid!r}")
    return problems


def test_every_string_on_every_screen_has_swahili():
    msgids = extract_msgids(EVERY_SCREEN)
    assert len(msgids) > 400  # the extraction really found the screens' strings
    assert "Customer cancelled on their phone." in msgids  # messages.py, through N_
    assert "Send prompt" in msgids  # a cashier template
    assert "Takings for %(day)s" in msgids  # an owner template
    assert "Callback inbox" in msgids  # an admin template
    assert "settled by hand" in msgids  # app/reports/flags.py, through N_
    assert "Shop added." in msgids  # app/admin/tills.py, through gettext
    assert "Till name" in msgids  # a form label, through lazy_gettext
    assert "%(num)d recovery code left." in msgids  # a plural, through ngettext
    problems = untranslated(msgids, load_catalogue())
    assert problems == [], "\n".join(problems)


def test_the_files_checked_are_the_files_extracted():
    """Every file `make translations` extracts strings from (babel.cfg) is checked above."""
    from babel.messages.extract import extract_from_dir
    from babel.messages.frontend import parse_mapping_cfg

    with (ROOT / "babel.cfg").open() as f:
        method_map, options_map = parse_mapping_cfg(f)
    extracted = {
        filename
        for filename, *_rest in extract_from_dir(
            str(ROOT), method_map, options_map, keywords=KEYWORDS
        )
    }
    checked = {str(path.relative_to(ROOT)) for path in EVERY_SCREEN}
    assert extracted, "babel.cfg found no strings"
    assert extracted <= checked, sorted(extracted - checked)


def test_the_check_catches_a_missing_translation():
    catalogue = load_catalogue()
    catalogue.delete("Send prompt")
    fake = {"Send prompt": "templates/cashier/_pay_form.html:1", "Paid": "x:1"}
    assert untranslated(fake, catalogue) == [
        "templates/cashier/_pay_form.html:1: no Swahili for 'Send prompt'"
    ]


def test_the_check_catches_a_missing_plural_form():
    catalogue = load_catalogue()
    msgid = "%(num)d recovery code left."
    catalogue[msgid].string = (catalogue[msgid].string[0], "")
    assert untranslated({msgid: "x:1"}, catalogue) == [f"x:1: no Swahili for {msgid!r}"]


def test_the_check_catches_broken_placeholders():
    catalogue = load_catalogue()
    catalogue["Today at %(till)s"].string = "Leo katika duka"
    problems = untranslated({"Today at %(till)s": "x:1"}, catalogue)
    assert problems == ["x:1: placeholders differ for 'Today at %(till)s'"]


def _hashable(value):
    """read_mo gives a plural message's ids and strings as lists, read_po as tuples."""
    return tuple(value) if isinstance(value, list | tuple) else value


def test_the_compiled_mo_matches_the_po():
    po = {_hashable(m.id): _hashable(m.string) for m in load_catalogue() if m.id and not m.fuzzy}
    with (CATALOGUE / "messages.mo").open("rb") as f:
        mo = {_hashable(m.id): _hashable(m.string) for m in read_mo(f) if m.id}
    assert mo == po, "run: pybabel compile -d translations -l sw"


def _singular(msgid):
    return msgid[0] if isinstance(msgid, tuple) else msgid


def test_no_obsolete_or_unused_entries_pile_up():
    every = extract_msgids(EVERY_SCREEN)
    unused = sorted(
        _singular(m.id) for m in load_catalogue() if m.id and _singular(m.id) not in every
    )
    assert unused == []
    assert not load_catalogue().obsolete
