"""Every refusal the payment modules can raise is recognised, so it can be shown translated."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from app.payments import guards, rules
from app.payments.messages import explain_input_error
from app.payments.service import CannotResend

ROOT = Path(__file__).resolve().parents[2]


def _rule_messages() -> list[tuple[str, str]]:
    """(message, field) for every InputError app.payments.rules raises, by provoking each."""
    cases = [
        (lambda: rules.normalise_phone(""), "phone"),
        (lambda: rules.normalise_phone("0202345678"), "phone"),
        (lambda: rules.parse_amount("", 250_000), "amount"),
        (lambda: rules.parse_amount(True, 250_000), "amount"),
        (lambda: rules.parse_amount("-5", 250_000), "amount"),
        (lambda: rules.parse_amount("99.50", 250_000), "amount"),
        (lambda: rules.parse_amount("1e3", 250_000), "amount"),
        (lambda: rules.parse_amount("0", 250_000), "amount"),
        (lambda: rules.parse_amount("250001", 250_000), "amount"),
        (lambda: rules.clean_reference("x" * 13, "Sale"), "reference"),
        (lambda: rules.clean_reference("a@b", "Sale"), "reference"),
    ]
    out = []
    for provoke, field in cases:
        with pytest.raises(rules.InputError) as caught:
            provoke()
        out.append((str(caught.value), field))
    return out


def _cannot_resend_messages() -> list[str]:
    """The literal messages of every `CannotResend("…")` raised in app/payments/service.py."""
    tree = ast.parse((ROOT / "app" / "payments" / "service.py").read_text())
    return [
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and getattr(node.func, "id", None) == CannotResend.__name__
        and node.args
        and isinstance(node.args[0], ast.Constant)
    ]


def test_every_rule_refusal_is_recognised_with_its_field(app):
    messages = _rule_messages()
    assert len(messages) == 11
    with app.test_request_context():
        for message, field in messages:
            explained = explain_input_error(rules.InputError(message))
            assert explained.field == field, message
            assert explained.text.unescape() == message  # the English reads as the rule wrote it


def test_every_cannot_resend_refusal_is_recognised(app):
    messages = _cannot_resend_messages()
    assert len(messages) >= 3
    with app.test_request_context():
        for message in messages:
            explained = explain_input_error(CannotResend(message))
            assert explained.text.unescape() == message
            assert explained.field is None


def test_every_guard_wait_is_recognised_with_a_countdown(app):
    with app.test_request_context():
        for reason, english in guards.MESSAGES.items():
            explained = explain_input_error(guards.TryLater(english.format(s=17), 17))
            assert explained.seconds == 17, reason
            assert explained.text.striptags() == english.format(s=17)
            assert '<b class="countdown" data-seconds="17">17</b>' in explained.text


def test_an_unknown_wait_still_counts_down(app):
    with app.test_request_context():
        explained = explain_input_error(guards.TryLater("Something new. Wait.", 9))
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
