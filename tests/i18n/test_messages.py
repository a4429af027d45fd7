"""Every refusal the payment modules can raise carries a msgid the Swahili catalogue knows."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from app.payments import guards, rules
from app.payments.messages import explain_input_error
from app.payments.service import CannotResend

ROOT = Path(__file__).resolve().parents[2]


def _rule_errors() -> list[tuple[rules.InputError, str]]:
    """(error, field) for every InputError app.payments.rules raises, by provoking each."""
    cases = [
        (lambda: rules.normalise_phone(""), "phone"),
        (lambda: rules.normalise_phone("0202345678"), "phone"),
        (lambda: rules.normalise_phone("0733123456"), "phone"),  # Airtel: names the network
        (lambda: rules.parse_amount("", 250_000), "amount"),
        (lambda: rules.parse_amount(True, 250_000), "amount"),
        (lambda: rules.parse_amount("-5", 250_000), "amount"),
        (lambda: rules.parse_amount("99.50", 250_000), "amount"),
        (lambda: rules.parse_amount("150,00", 250_000), "amount"),
        (lambda: rules.parse_amount("1e3", 250_000), "amount"),
        (lambda: rules.parse_amount("0", 250_000), "amount"),
        (lambda: rules.parse_amount("250001", 250_000), "amount"),
        (lambda: rules.clean_reference("x" * 13, "Sale"), "reference"),
        (lambda: rules.clean_reference("a@b", "Sale"), "reference"),
        (lambda: rules.clean_description("x" * 14), "description"),
        (lambda: rules.clean_description("a@b"), "description"),
    ]
    out = []
    for provoke, field in cases:
        with pytest.raises(rules.InputError) as caught:
            provoke()
        out.append((caught.value, field))
    return out


def _catalogue_ids() -> set[str]:
    from babel.messages.pofile import read_po

    with (ROOT / "translations" / "sw" / "LC_MESSAGES" / "messages.po").open("rb") as f:
        return {m.id for m in read_po(f) if m.id and m.string}


def _cannot_resend_msgids() -> list[str]:
    """Every refusal app.payments.resend can give (module-level N_("…") constants)."""
    tree = ast.parse((ROOT / "app" / "payments" / "resend.py").read_text())
    found = []
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            if getattr(node.value.func, "id", None) == "N_":
                found.append(node.value.args[0].value)
    return found


def test_every_cannot_resend_refusal_has_a_translated_msgid(app):
    msgids = _cannot_resend_msgids()
    assert len(msgids) == 5
    known = _catalogue_ids()
    with app.test_request_context():
        for msgid in msgids:
            assert msgid in known, msgid
            explained = explain_input_error(CannotResend(msgid))
            assert explained.text.unescape() == msgid
            assert explained.field is None


def test_every_guard_wait_has_a_countdown(app):
    known = _catalogue_ids()
    with app.test_request_context():
        for reason, msgid in guards.MESSAGES.items():
            assert msgid in known, reason
            error = guards.TryLater(reason, 17)
            explained = explain_input_error(error)
            assert explained.seconds == 17, reason
            assert explained.text.striptags() == str(error)
            assert '<b class="countdown" data-seconds="17">17</b>' in explained.text


def test_any_refusal_with_seconds_counts_down(app):
    with app.test_request_context():
        explained = explain_input_error(rules.InputError("Something new. Wait %(s)s s.", s=9))
    assert explained.seconds == 9
    assert 'data-seconds="9"' in explained.text


def test_an_unknown_refusal_is_shown_escaped(app):
    with app.test_request_context():
        explained = explain_input_error(rules.InputError("<b>odd</b>"))
    assert str(explained.text) == "&lt;b&gt;odd&lt;/b&gt;"


def test_user_text_inside_a_refusal_is_escaped(app):
    with app.test_request_context():
        with pytest.raises(rules.InputError) as caught:
            rules.normalise_phone("<script>")
        explained = explain_input_error(caught.value)
    assert "<script>" not in explained.text and "&lt;script&gt;" in explained.text
