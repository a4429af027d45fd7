"""Which Kenyan mobile network a number's prefix was allocated to (before any porting)."""

from __future__ import annotations

import re

SAFARICOM = "Safaricom"
AIRTEL = "Airtel"
TELKOM = "Telkom"
EQUITEL = "Equitel"
FAIBA = "Faiba"

# Source: docs/phone-numbers.md
# Inclusive ranges of four-digit local prefixes (0733 is +254 733) and the network each range
# was allocated to. A prefix in no range (0744, 0749, 0760, 0761, 0767, 0109, 0116...) is not
# known to be a mobile range at all. Ranges must not overlap: _expand refuses if they do.
PREFIX_RANGES: tuple[tuple[str, str, str], ...] = (
    ("0100", "0108", AIRTEL),
    ("0110", "0115", SAFARICOM),
    ("0700", "0729", SAFARICOM),
    ("0730", "0739", AIRTEL),
    ("0740", "0743", SAFARICOM),
    ("0745", "0746", SAFARICOM),
    ("0747", "0747", FAIBA),
    ("0748", "0748", SAFARICOM),
    ("0750", "0756", AIRTEL),
    ("0757", "0759", SAFARICOM),
    ("0762", "0762", AIRTEL),
    ("0763", "0766", EQUITEL),
    ("0768", "0769", SAFARICOM),
    ("0770", "0779", TELKOM),
    ("0780", "0789", AIRTEL),
    ("0790", "0799", SAFARICOM),
)

# Only ASCII digits: `\d` would also take Arabic-Indic or fullwidth digits.
_LOCAL = re.compile(r"0([17][0-9]{8})")
_BARE = re.compile(r"[17][0-9]{8}")
_INTL = re.compile(r"\+?254([17][0-9]{8})")
_PREFIX = re.compile(r"0[17][0-9]{2}")
_SEPARATORS = re.compile(r"[\s\-]")


def _expand(ranges: tuple[tuple[str, str, str], ...]) -> dict[str, str]:
    table: dict[str, str] = {}
    for first, last, network in ranges:
        for n in range(int(first), int(last) + 1):
            prefix = f"{n:04d}"
            if prefix in table:
                raise ValueError(f"prefix {prefix} is in two ranges ({table[prefix]}, {network})")
            table[prefix] = network
    return table


#: "0733" -> "Airtel", one entry per four-digit prefix
NETWORK_BY_PREFIX: dict[str, str] = _expand(PREFIX_RANGES)


def local_prefix(msisdn_or_local: str) -> str | None:
    """The four-digit local prefix ("0733") of a mobile number in any accepted form, or None."""
    text = _SEPARATORS.sub("", msisdn_or_local or "")
    if _PREFIX.fullmatch(text):
        return text
    match = _INTL.fullmatch(text) or _LOCAL.fullmatch(text) or _BARE.fullmatch(text)
    if match is None:
        return None
    nine = match.group(match.lastindex or 0)
    return "0" + nine[:3]


def network_for(msisdn_or_local: str) -> str | None:
    """The network the number's prefix was allocated to, or None if unknown or not a mobile.

    Takes 2547XXXXXXXX, +2547XXXXXXXX, 07XXXXXXXX, 7XXXXXXXX (and the 01/1 forms), or a bare
    four-digit prefix such as "0733". A ported number still answers its original network.
    """
    prefix = local_prefix(msisdn_or_local)
    return NETWORK_BY_PREFIX.get(prefix) if prefix else None


def is_safaricom(msisdn_or_local: str) -> bool:
    """True if the number's prefix is one of Safaricom's own mobile ranges."""
    return network_for(msisdn_or_local) == SAFARICOM
