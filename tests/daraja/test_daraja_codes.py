"""ResultCode catalogue lookups."""

from __future__ import annotations

import pytest

from app.daraja import RESULT_CODES, describe, is_success
from app.i18n import N_
from app.payments.messages import RESULT_MESSAGES, result_message

DOCUMENTED = [
    "0", "1", "2", "3", "4", "8", "17", "26", "1001", "1019", "1025", "9999",
    "1032", "1037", "2001", "2028", "8006", "SFC_IC0003", "1101",
]  # fmt: skip


def test_catalogue_covers_every_documented_code() -> None:
    assert sorted(RESULT_CODES) == sorted(DOCUMENTED)
    for code, info in RESULT_CODES.items():
        assert info.code == code
        assert info.meaning
    # Every code has its cashier wording (kept with the other screen messages).
    assert sorted(RESULT_MESSAGES) == sorted(DOCUMENTED)


@pytest.mark.parametrize("code", [1032, "1032", " 1032 "])
def test_describe_accepts_number_or_text(code: int | str) -> None:
    info = describe(code)
    assert info.code == "1032"
    assert result_message(code) == "Customer cancelled on their phone."


def test_non_numeric_code_is_known() -> None:
    info = describe("SFC_IC0003")
    assert info.config_error is True
    assert info.can_resend is False


@pytest.mark.parametrize("code", ["2028", "SFC_IC0003", "1101"])
def test_config_errors_are_flagged(code: str) -> None:
    assert describe(code).config_error is True


def test_resend_waits_follow_mpesa_guards() -> None:
    assert describe(17).resend_after_s == 120  # same amount, same phone within 2 min
    assert describe(1001).resend_after_s >= 60  # another session open
    assert describe(1).can_resend is True
    assert describe(8006).can_resend is False


@pytest.mark.parametrize("code", ["1036", 1050, "XYZ"])
def test_unknown_code_gets_generic_resendable_failure(code: int | str) -> None:
    info = describe(code)
    assert info.code == str(code)
    assert result_message(code) == "Payment failed. Resend or use another method."
    assert info.can_resend is True
    assert info.config_error is False


@pytest.mark.parametrize(
    ("code", "expected"),
    [(0, True), ("0", True), (" 0 ", True), (1032, False), ("1032", False), (None, False),
     (False, False), ("SFC_IC0003", False)],
)  # fmt: skip
def test_is_success(code: int | str | None, expected: bool) -> None:
    assert is_success(code) is expected


def test_n_marker_is_identity() -> None:
    assert N_("Payment received.") == "Payment received."
