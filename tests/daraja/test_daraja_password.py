"""STK Password and Timestamp: the portal sample, Nairobi time, one instant for both."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta, timezone

import pytest

from app.daraja import password_and_timestamp, stk_password, stk_timestamp

SHORTCODE = "174379"
PASSKEY = "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919"
# The Password printed in the Daraja portal's STK push sample request.
PORTAL_TIMESTAMP = "20210628092408"
PORTAL_PASSWORD = (
    "MTc0Mzc5YmZiMjc5ZjlhYTliZGJjZjE1OGU5N2RkNzFhNDY3Y2QyZTBjODkzMDU5YjEwZjc4ZTZiNzJhZGExZW"
    "QyYzkxOTIwMjEwNjI4MDkyNDA4"
)


def test_portal_sample_password() -> None:
    password = stk_password(SHORTCODE, PASSKEY, PORTAL_TIMESTAMP)
    assert password == PORTAL_PASSWORD
    concatenated = SHORTCODE + PASSKEY + PORTAL_TIMESTAMP
    assert password == base64.b64encode(concatenated.encode()).decode()
    assert base64.b64decode(password, validate=True).decode() == concatenated


def test_password_is_standard_base64_not_urlsafe() -> None:
    # "?>>" encodes to "Pz4+" in standard base64 and "Pz4-" in the URL-safe alphabet.
    assert stk_password("?", ">", ">") == "Pz4+"


def test_password_refuses_bytes() -> None:
    # bytes would otherwise be formatted as "b'174379'" into the password.
    with pytest.raises(TypeError):
        stk_password(b"174379", PASSKEY, PORTAL_TIMESTAMP)  # type: ignore[arg-type]


def test_timestamp_is_nairobi_time_across_new_year() -> None:
    # 23:30 UTC on 31 Dec is 02:30 on 1 Jan in Nairobi (UTC+3): next day, next year.
    assert stk_timestamp(datetime(2024, 12, 31, 23, 30, tzinfo=UTC)) == "20250101023000"


def test_timestamp_converts_from_any_aware_zone() -> None:
    india = timezone(timedelta(hours=5, minutes=30))
    # 12:00 in India = 06:30 UTC = 09:30 in Nairobi.
    assert stk_timestamp(datetime(2025, 3, 1, 12, 0, 5, tzinfo=india)) == "20250301093005"


def test_timestamp_refuses_naive_datetime() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        stk_timestamp(datetime(2025, 1, 1, 12, 0, 0))


def test_password_and_timestamp_come_from_one_instant() -> None:
    instant = datetime(2021, 6, 28, 6, 24, 8, tzinfo=UTC)  # 09:24:08 EAT
    password, timestamp = password_and_timestamp(SHORTCODE, PASSKEY, instant)
    assert timestamp == PORTAL_TIMESTAMP
    assert password == PORTAL_PASSWORD
