"""Input rules: every accepted phone form, and every amount M-Pesa would refuse."""

import pytest

from app.payments.rules import (
    InputError,
    clean_description,
    clean_reference,
    normalise_phone,
    parse_amount,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0712345678", "254712345678"),
        ("0112345678", "254112345678"),
        ("712345678", "254712345678"),
        ("112345678", "254112345678"),
        ("254712345678", "254712345678"),
        ("254112345678", "254112345678"),
        ("+254712345678", "254712345678"),
        ("+254 712 345 678", "254712345678"),
        ("0712-345-678", "254712345678"),
        (" 0708 374 149 ", "254708374149"),
        ("0708374149", "254708374149"),
    ],
)
def test_phone_forms_normalise(raw, expected):
    assert normalise_phone(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        None,
        "0202345678",  # Nairobi landline
        "071234567",  # too short
        "07123456789",  # too long
        "255712345678",  # Tanzania
        "+1 712 345 678",
        "0812345678",
        "07l2345678",  # letter l for 1
        "2547123456789",
        "abc",
    ],
)
def test_bad_phones_are_refused_with_the_accepted_forms(raw):
    with pytest.raises(InputError) as exc:
        normalise_phone(raw)
    assert "07XXXXXXXX" in str(exc.value)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("1", 1), ("150", 150), (" 250000 ", 250_000), ("1,500", 1500), (42, 42)],
)
def test_whole_shillings_accepted(raw, expected):
    assert parse_amount(raw, 250_000) == expected


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("100.50", "whole shillings"),
        ("99.99", "whole shillings"),
        ("0", "at least KES 1"),
        ("-5", "at least KES 1"),
        ("abc", "digits only"),
        ("1e3", "digits only"),
        ("", "whole shillings"),
        (None, "whole shillings"),
        ("250001", "at most KES 250,000"),
        (True, "whole shillings"),
    ],
)
def test_amounts_mpesa_would_refuse(raw, fragment):
    with pytest.raises(InputError) as exc:
        parse_amount(raw, 250_000)
    assert fragment in str(exc.value)


def test_maximum_is_configurable():
    assert parse_amount("70000", 70_000) == 70_000
    with pytest.raises(InputError, match="at most KES 70,000"):
        parse_amount("70001", 70_000)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, "Sale"),
        ("", "Sale"),
        ("INV-42", "INV-42"),
        ("  Table  7 ", "Table 7"),
        ("ABCDEFGHIJKL", "ABCDEFGHIJKL"),
    ],
)
def test_reference_cleaned(raw, expected):
    assert clean_reference(raw, default="Sale") == expected


@pytest.mark.parametrize(("raw", "fragment"), [("ABCDEFGHIJKLM", "at most 12"), ("a&b", "letters")])
def test_reference_refused(raw, fragment):
    with pytest.raises(InputError, match=fragment):
        clean_reference(raw, default="Sale")


def test_description_limit_is_13():
    assert clean_description("ABCDEFGHIJKLM") == "ABCDEFGHIJKLM"
    with pytest.raises(InputError, match="at most 13"):
        clean_description("ABCDEFGHIJKLMN")
