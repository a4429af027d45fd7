"""Input rules: every accepted phone form, and every amount M-Pesa would refuse."""

import inspect

import pytest

from app.payments.rules import (
    InputError,
    clean_description,
    clean_reference,
    normalise_phone,
    parse_amount,
)

NO_DECIMALS = "Whole shillings only, no decimals: M-PESA takes no cents."
DIGITS_ONLY = "Enter the amount in whole shillings, digits only (for example 150)."
NOT_SAFARICOM = "“%(raw)s” is not a Safaricom mobile number. Use %(forms)s."
OTHER_NETWORK = (
    "“%(raw)s” looks like a number on the %(network)s network: M-PESA prompts reach Safaricom "
    "lines only. Ask for a Safaricom number, or ask the admin to allow ported numbers."
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
        ("100.50", "Whole shillings only, no decimals"),
        ("99.99", "Whole shillings only, no decimals"),
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


# --- Decimal commas and points: one message, never a misread amount ---------------------


@pytest.mark.parametrize(
    "raw",
    [
        "150,00",  # 150 with a decimal comma: not 15000
        "10,00",  # not 1000
        "1,5",  # not 15
        "1,0,0",  # not 100
        "1,50",
        "1,5000",
        "12,34,567",  # lakh grouping
        ",500",
        "1,500,",
        " 150,00 ",
        "150.50",
        "100.5",
        ".5",
        "1,500.00",
        "1.500",  # a dot as thousands separator is still a decimal point to us
    ],
)
def test_decimal_commas_and_points_are_refused_with_one_message(raw):
    with pytest.raises(InputError) as exc:
        parse_amount(raw, 250_000)
    assert exc.value.msgid == NO_DECIMALS
    assert exc.value.field == "amount"
    assert str(exc.value) == NO_DECIMALS
    assert exc.value.params == {}


def test_the_old_cents_message_is_gone():
    with pytest.raises(InputError) as exc:
        parse_amount("150.50", 250_000)
    assert "remove the cents" not in str(exc.value)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1,500", 1500),
        ("12,345", 12_345),
        ("1,234,567", 1_234_567),
        (" 250,000 ", 250_000),
        ("999", 999),
    ],
)
def test_commas_grouping_thousands_are_thousands(raw, expected):
    assert parse_amount(raw, 2_000_000) == expected


def test_thousands_still_meet_the_maximum():
    with pytest.raises(InputError, match="at most KES 250,000"):
        parse_amount("1,234,567", 250_000)
    with pytest.raises(InputError, match="at least KES 1"):
        parse_amount("0,000", 250_000)


# --- Only ASCII digits --------------------------------------------------------------------

ARABIC_INDIC_150 = "\u0661\u0665\u0660"  # ١٥٠
FULLWIDTH_150 = "\uff11\uff15\uff10"  # １５０
MATH_BOLD_150 = "\U0001d7cf\U0001d7d3\U0001d7ce"  # 𝟏𝟓𝟎


@pytest.mark.parametrize(
    "raw",
    [
        ARABIC_INDIC_150,
        FULLWIDTH_150,
        MATH_BOLD_150,
        "1\u06650",  # 1, Extended Arabic-Indic 5, 0
        "\u0661,\u0665\u0660\u0660",  # ١,٥٠٠
        "1,\uff15\uff10\uff10",  # 1,５００
        "\u0967\u096b\u0966",  # Devanagari १५०
    ],
)
def test_non_ascii_digits_are_not_an_amount(raw):
    if "," not in raw:
        assert int(raw) == 150  # what int() alone would have read
    with pytest.raises(InputError) as exc:
        parse_amount(raw, 250_000)
    assert exc.value.msgid == DIGITS_ONLY
    assert exc.value.field == "amount"


def _to(digits: str, zero: int) -> str:
    return "".join(chr(zero + int(d)) if d.isdigit() else d for d in digits)


@pytest.mark.parametrize(
    "raw",
    [
        _to("0712345678", 0x0660),  # Arabic-Indic ٠٧١٢٣٤٥٦٧٨
        _to("0712345678", 0xFF10),  # fullwidth ０７１２...
        _to("0712345678", 0x1D7CE),  # mathematical bold 𝟎𝟕𝟏𝟐...
        "07" + _to("12345678", 0x0660),  # ASCII 07, then Arabic-Indic
        "07" + _to("12345678", 0xFF10),
        "+2547" + _to("12345678", 0x1D7CE),
        "2547" + _to("08374149", 0x06F0),  # Extended Arabic-Indic (Persian)
        "0712 345 " + _to("678", 0x0660),
        "7" + _to("12345678", 0xFF10),
    ],
)
@pytest.mark.parametrize("allow_ported", [False, True])
def test_non_ascii_digits_are_not_a_phone(raw, allow_ported):
    with pytest.raises(InputError) as exc:
        normalise_phone(raw, allow_ported=allow_ported)
    assert exc.value.msgid == NOT_SAFARICOM
    assert exc.value.field == "phone"
    assert exc.value.params["raw"] == raw.strip()


# --- Prefixes: Safaricom lines only, unless ported numbers are allowed ---------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0700000000", "254700000000"),
        ("254700000001", "254700000001"),  # simulator test phones
        ("254700001032", "254700001032"),
        ("254700010003", "254700010003"),
        ("0708 374 149", "254708374149"),  # the Daraja sandbox number
        ("0709123456", "254709123456"),
        ("0710123456", "254710123456"),
        ("254711222333", "254711222333"),
        ("0722123456", "254722123456"),
        ("0729123456", "254729123456"),
        ("0740123456", "254740123456"),
        ("0743123456", "254743123456"),
        ("0745123456", "254745123456"),
        ("0746123456", "254746123456"),
        ("0748123456", "254748123456"),
        ("+254 757 123 456", "254757123456"),
        ("0759123456", "254759123456"),
        ("768123456", "254768123456"),
        ("0769123456", "254769123456"),
        ("0790123456", "254790123456"),
        ("0799123456", "254799123456"),
        ("0110 123 456", "254110123456"),
        ("0111123456", "254111123456"),
        ("+254112345678", "254112345678"),
        ("113123456", "254113123456"),
        ("0114669532", "254114669532"),
        ("0115123456", "254115123456"),
    ],
)
def test_safaricom_prefixes_are_accepted(raw, expected):
    assert normalise_phone(raw) == expected
    assert normalise_phone(raw, allow_ported=True) == expected


OTHER_NETWORKS = [
    ("0733 123 456", "Airtel", "254733123456"),
    ("0730123456", "Airtel", "254730123456"),
    ("+254 739 123 456", "Airtel", "254739123456"),
    ("0100 123 456", "Airtel", "254100123456"),
    ("0102123456", "Airtel", "254102123456"),
    ("254108123456", "Airtel", "254108123456"),
    ("0750123456", "Airtel", "254750123456"),
    ("756123456", "Airtel", "254756123456"),
    ("0762123456", "Airtel", "254762123456"),
    ("0780123456", "Airtel", "254780123456"),
    ("0789-123-456", "Airtel", "254789123456"),
    ("0770 123 456", "Telkom", "254770123456"),
    ("+254779123456", "Telkom", "254779123456"),
    ("0763123456", "Equitel", "254763123456"),
    ("0766123456", "Equitel", "254766123456"),
    ("0747123456", "Faiba", "254747123456"),
]


@pytest.mark.parametrize(("raw", "network", "_msisdn"), OTHER_NETWORKS)
def test_other_networks_are_refused_naming_the_network(raw, network, _msisdn):
    with pytest.raises(InputError) as exc:
        normalise_phone(raw)
    assert exc.value.field == "phone"
    assert exc.value.msgid == OTHER_NETWORK
    assert exc.value.params == {"raw": raw.strip(), "network": network}
    assert str(exc.value) == (
        f"“{raw.strip()}” looks like a number on the {network} network: M-PESA prompts reach "
        "Safaricom lines only. Ask for a Safaricom number, or ask the admin to allow ported "
        "numbers."
    )


@pytest.mark.parametrize(("raw", "_network", "msisdn"), OTHER_NETWORKS)
def test_other_networks_are_accepted_when_ported_numbers_are_allowed(raw, _network, msisdn):
    assert normalise_phone(raw, allow_ported=True) == msisdn


@pytest.mark.parametrize(
    ("raw", "msisdn"),
    [
        ("0744123456", "254744123456"),
        ("0749123456", "254749123456"),
        ("0760123456", "254760123456"),
        ("0761123456", "254761123456"),
        ("0767123456", "254767123456"),
        ("0109123456", "254109123456"),
        ("0116123456", "254116123456"),
        ("0123456789", "254123456789"),
        ("+254199123456", "254199123456"),
    ],
)
def test_unknown_mobile_prefixes_are_not_safaricom(raw, msisdn):
    with pytest.raises(InputError) as exc:
        normalise_phone(raw)
    assert exc.value.field == "phone"
    assert exc.value.msgid == NOT_SAFARICOM
    assert "network" not in exc.value.params
    # An admin who allows ported numbers accepts any Kenyan mobile number in the right shape.
    assert normalise_phone(raw, allow_ported=True) == msisdn


@pytest.mark.parametrize("raw", ["0202345678", "255712345678", "0812345678", "07123456789"])
def test_allow_ported_still_needs_a_kenyan_mobile_number(raw):
    with pytest.raises(InputError) as exc:
        normalise_phone(raw, allow_ported=True)
    assert exc.value.msgid == NOT_SAFARICOM


def test_the_strict_check_is_the_default_and_keyword_only():
    parameter = inspect.signature(normalise_phone).parameters["allow_ported"]
    assert parameter.default is False
    assert parameter.kind is inspect.Parameter.KEYWORD_ONLY
    with pytest.raises(TypeError):
        normalise_phone("0733123456", True)  # type: ignore[misc]
