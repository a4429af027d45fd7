"""The prefix table: which network each Kenyan mobile prefix belongs to, and its documentation."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from app.payments import prefixes
from app.payments.prefixes import (
    NETWORK_BY_PREFIX,
    PREFIX_RANGES,
    is_safaricom,
    local_prefix,
    network_for,
)

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "phone-numbers.md"

SAFARICOM_PREFIXES = (
    [f"07{n:02d}" for n in range(0, 30)]
    + ["0740", "0741", "0742", "0743", "0745", "0746", "0748", "0757", "0758", "0759"]
    + ["0768", "0769"]
    + [f"079{n}" for n in range(10)]
    + ["0110", "0111", "0112", "0113", "0114", "0115"]
)


def test_safaricom_ranges_are_exactly_the_known_ones():
    ours = sorted(p for p, network in NETWORK_BY_PREFIX.items() if network == "Safaricom")
    assert ours == sorted(SAFARICOM_PREFIXES)


@pytest.mark.parametrize(
    ("number", "network"),
    [
        ("0733", "Airtel"),
        ("0733123456", "Airtel"),
        ("733123456", "Airtel"),
        ("254733123456", "Airtel"),
        ("+254733123456", "Airtel"),
        ("+254 733 123 456", "Airtel"),
        ("0733-123-456", "Airtel"),
        ("0100123456", "Airtel"),
        ("254101123456", "Airtel"),
        ("0752123456", "Airtel"),
        ("0762123456", "Airtel"),
        ("0783123456", "Airtel"),
        ("0770123456", "Telkom"),
        ("0775123456", "Telkom"),
        ("0764123456", "Equitel"),
        ("0747123456", "Faiba"),
        ("0722123456", "Safaricom"),
        ("254708374149", "Safaricom"),
        ("0110123456", "Safaricom"),
        ("115123456", "Safaricom"),
        ("0757", "Safaricom"),
    ],
)
def test_network_for_every_form(number, network):
    assert network_for(number) == network
    assert is_safaricom(number) is (network == "Safaricom")


@pytest.mark.parametrize(
    "number",
    [
        "0744123456",  # unallocated as far as our sources know
        "0749123456",
        "0760123456",
        "0767123456",
        "0109123456",
        "0116123456",
        "0202345678",  # Nairobi landline
        "0812345678",
        "255712345678",  # Tanzania
        "07123",
        "",
        "abc",
        "\u0660\u0667\u0663\u0663123456",  # Arabic-Indic ٠٧٣٣ then ASCII
        "\uff10\uff17\uff12\uff12",  # fullwidth ０７２２
        "07\u0662\u0662123456",
    ],
)
def test_unknown_or_malformed_numbers_have_no_network(number):
    assert network_for(number) is None
    assert is_safaricom(number) is False


def test_local_prefix_of_each_form():
    assert local_prefix("254112345678") == "0112"
    assert local_prefix("+254 712 345 678") == "0712"
    assert local_prefix("712345678") == "0712"
    assert local_prefix("0712345678") == "0712"
    assert local_prefix("0712") == "0712"
    assert local_prefix("2547123456") is None


def test_ranges_are_well_formed_and_do_not_overlap():
    total = 0
    for first, last, network in PREFIX_RANGES:
        assert re.fullmatch(r"0[17][0-9]{2}", first) and re.fullmatch(r"0[17][0-9]{2}", last)
        assert first <= last, (first, last)
        assert network in {"Safaricom", "Airtel", "Telkom", "Equitel", "Faiba"}
        total += int(last) - int(first) + 1
    assert len(NETWORK_BY_PREFIX) == total  # no prefix counted twice


def test_an_overlapping_range_is_refused():
    with pytest.raises(ValueError, match="0733 is in two ranges"):
        prefixes._expand((("0730", "0739", "Airtel"), ("0733", "0733", "Safaricom")))


def test_the_table_cites_its_documentation():
    source = (ROOT / "app" / "payments" / "prefixes.py").read_text()
    comment = source.split("PREFIX_RANGES:", 1)[0]
    assert "# Source: docs/phone-numbers.md" in comment
    assert DOC.is_file()


def _documented_table() -> dict[str, str]:
    """The prefix table as docs/phone-numbers.md shows it, expanded to single prefixes."""
    table: dict[str, str] = {}
    for line in DOC.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 2 or not re.match(r"0[17][0-9]{2}", cells[1]):
            continue
        network = cells[0].split(" (")[0]
        if network.startswith("Not known"):
            continue
        for item in cells[1].split(","):
            first, _, last = item.strip().partition("–")
            for n in range(int(first), int(last or first) + 1):
                table[f"{n:04d}"] = network
    return table


def test_the_documentation_shows_the_same_table():
    assert _documented_table() == NETWORK_BY_PREFIX
