"""Reading portal statements: every variant seen in exports, and every refusal, by line."""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.reconcile import statement as reader
from app.reconcile.statement import (
    MAX_BYTES,
    Statement,
    StatementError,
    StatementLine,
    parse_statement,
)

FULL = (
    "Receipt No.,Completion Time,Initiation Time,Details,Transaction Status,Paid In,Withdrawn,"
    "Balance,Balance Confirmed,Reason Type,Other Party Info,Linked Transaction ID,A/C No."
)
PREAMBLE = (
    "Organization Name:,ACME LTD\nTime Period:,01-09-2026 - 30-09-2026\nPaybill,556677\n\n,\n"
)
PAY = (
    "QKR12XYZ9,2026-09-03 17:00:00,2026-09-03 16:59:52,Pay Bill Online,Completed,"
    '"1,053.00",,"5,053.00",true,Pay Bill Online,254712345678 - JANE DOE,,R-000001'
)
CHARGE = (
    "QKR12XYZ9,2026-09-03 17:00:00,,Business Pay Bill Charge,Completed,,-15.00,"
    '"5,038.00",true,Business Pay Bill Charge,,,'
)
SETTLE = (
    "QKS99AAA1,2026-09-03 18:00:00,,Organization Settle to Bank,Completed,,4000.00,"
    "1038.00,true,Withdraw Funds to Bank,KCB BANK,,"
)


def parse(text: str, **kwargs: object) -> Statement:
    return parse_statement(text.encode(), **kwargs)  # type: ignore[arg-type]


def refusal(data: bytes | str, **kwargs: object) -> StatementError:
    raw = data.encode() if isinstance(data, str) else data
    with pytest.raises(StatementError) as caught:
        parse_statement(raw, **kwargs)  # type: ignore[arg-type]
    error = caught.value
    assert isinstance(error, ValueError)
    assert str(error) == (error.msgid % error.params if error.params else error.msgid)
    return error


# --- The full export -------------------------------------------------------------------------


def test_full_export_with_preamble():
    statement = parse(PREAMBLE + FULL + "\n" + PAY + "\n" + CHARGE + "\n" + SETTLE + "\n")
    assert statement.organisation == "ACME LTD"
    assert statement.period == (date(2026, 9, 1), date(2026, 9, 30))
    assert statement.shortcode == "556677"
    assert statement.newest_first is False
    assert statement.repeated_lines == 0
    assert statement.headings[0] == "Receipt No."
    pay, charge, settle = statement.lines
    assert pay == StatementLine(
        line=7,
        receipt="QKR12XYZ9",
        completed_at=datetime(2026, 9, 3, 14, 0, tzinfo=UTC),
        initiated_at=datetime(2026, 9, 3, 13, 59, 52, tzinfo=UTC),
        details="Pay Bill Online",
        status="Completed",
        paid_in_cents=105300,
        withdrawn_cents=0,
        balance_cents=505300,
        reason_type="Pay Bill Online",
        other_party="254712345678 - JANE DOE",
        phone_digits_visible="254712345678",
        party_name="JANE DOE",
        linked_receipt=None,
        account="R-000001",
    )
    assert pay.completed and pay.is_incoming_payment and not pay.is_reversal
    assert pay.amount_kes == 1053
    # The charge carries the payment's receipt: both lines are kept.
    assert (charge.line, charge.receipt, charge.withdrawn_cents) == (8, "QKR12XYZ9", 1500)
    assert charge.is_charge_or_settlement and not charge.is_incoming_payment
    assert charge.initiated_at is None and charge.paid_in_cents == 0
    assert (settle.withdrawn_cents, settle.phone_digits_visible, settle.party_name) == (
        400000,
        None,
        "KCB BANK",
    )
    assert settle.is_charge_or_settlement


def test_no_preamble_at_all():
    statement = parse(FULL + "\n" + PAY + "\n")
    assert statement.organisation is None
    assert statement.period is None
    assert statement.shortcode is None
    assert [line.line for line in statement.lines] == [2]


@pytest.mark.parametrize(
    ("preamble", "organisation", "shortcode", "period"),
    [
        ("Organisation Name:,ACME\n", "ACME", None, None),
        ("Organization Name:,ACME LTD,,,\n,,,\n", "ACME LTD", None, None),
        ("Till Number,5123456\n", None, "5123456", None),
        ("Short Code:,600000\n", None, "600000", None),
        ("Organization Short Code,174379\n", None, "174379", None),
        ('"Paybill: 556677"\n', None, "556677", None),
        (
            "Time Period:,2026-09-01 - 2026-09-30\n",
            None,
            None,
            (date(2026, 9, 1), date(2026, 9, 30)),
        ),
        ("Time Period:,01/09/2026,30/09/2026\n", None, None, (date(2026, 9, 1), date(2026, 9, 30))),
        ("Time Period:,30-09-2026 - 01-09-2026\n", None, None, None),  # backwards: ignored
        ("Time Period:,soon\n", None, None, None),
        ("\n\n,\n,,\n", None, None, None),
    ],
)
def test_preamble_variants(preamble, organisation, shortcode, period):
    statement = parse(preamble + FULL + "\n" + PAY + "\n")
    assert (statement.organisation, statement.shortcode, statement.period) == (
        organisation,
        shortcode,
        period,
    )
    assert [line.receipt for line in statement.lines] == ["QKR12XYZ9"]


# --- Headings --------------------------------------------------------------------------------


def test_short_export_stopping_after_balance():
    text = (
        "Receipt No.,Completion Time,Initiation Time,Details,Transaction Status,Paid In,"
        "Withdrawn,Balance\n"
        "QKR12XYZ9,2026-09-03 17:00:00,,Pay Bill from 2547****678 - ANN Acc. R-7,Completed,"
        "100.00,,100.00\n"
    )
    (line,) = parse(text).lines
    assert (line.other_party, line.reason_type, line.linked_receipt) == ("", "", None)
    # No Other Party Info or A/C No. column: Details still names them.
    assert line.phone_digits_visible == "2547****678"
    assert line.account == "R-7"


def test_short_export_stopping_after_other_party_info():
    text = (
        "Receipt No.,Completion Time,Initiation Time,Details,Transaction Status,Paid In,"
        "Withdrawn,Balance,Balance Confirmed,Reason Type,Other Party Info\n"
        "QKR12XYZ9,2026-09-03 17:00:00,,Merchant Payment Online,Completed,250.00,,250.00,"
        "true,Merchant Payment Online,2547****678 - ANN\n"
    )
    (line,) = parse(text).lines
    assert line.phone_digits_visible == "2547****678"
    assert (line.party_name, line.account, line.linked_receipt) == ("ANN", None, None)
    assert line.is_incoming_payment


def test_minimal_required_columns_only():
    text = (
        "Receipt No.,Completion Time,Transaction Status,Paid In\nAB1,2026-09-03 17:00,Completed,5\n"
    )
    (line,) = parse(text).lines
    assert (line.paid_in_cents, line.withdrawn_cents, line.balance_cents) == (500, 0, None)
    assert (line.details, line.account, line.phone_digits_visible) == ("", None, None)


def test_extra_columns_and_heading_spelling():
    text = (
        "RECEIPT NO,Transaction Type,completion  time,Currency,Details,transaction status,"
        "PAID IN,Withdrawn,Other Party Info,A/C No\n"
        "qkr12xyz9,Pay Bill,2026-09-03 17:00:00,KES,Pay Bill Online,completed,10.50,,"
        "0712345678 - JO,ACC-1\n"
    )
    (line,) = parse(text).lines
    assert line.receipt == "QKR12XYZ9"
    assert line.completed and line.status == "completed"
    assert line.paid_in_cents == 1050 and line.amount_kes is None
    assert line.phone_digits_visible == "254712345678"
    assert line.account == "ACC-1"


def test_lower_case_receipts_and_linked_ids_are_upper_cased():
    text = (
        FULL + "\n"
        "tj12abc34d,2026-09-03 17:00:00,,Reversal,Completed,,-100.00,,,Reversal,,qkr12xyz9,\n"
    )
    (line,) = parse(text).lines
    assert (line.receipt, line.linked_receipt) == ("TJ12ABC34D", "QKR12XYZ9")
    assert line.is_reversal


# --- Times -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "utc"),
    [
        ("2026-10-03 17:00:00", datetime(2026, 10, 3, 14, 0, tzinfo=UTC)),
        ("2026-10-03T17:00:00", datetime(2026, 10, 3, 14, 0, tzinfo=UTC)),
        ("03-02-2026 10:15:00", datetime(2026, 2, 3, 7, 15, tzinfo=UTC)),
        ("03/02/2026 10:15:00", datetime(2026, 2, 3, 7, 15, tzinfo=UTC)),
        ("20-04-2017 15:50", datetime(2017, 4, 20, 12, 50, tzinfo=UTC)),
        ("01-01-2026 01:30:00", datetime(2025, 12, 31, 22, 30, tzinfo=UTC)),  # day before
        ("3/2/2026 10:15:00 PM", datetime(2026, 2, 3, 19, 15, tzinfo=UTC)),
        ("2026-10-03 12:05:00 AM", datetime(2026, 10, 2, 21, 5, tzinfo=UTC)),
    ],
)
def test_time_formats_are_nairobi_local(written, utc):
    text = f"{FULL}\nAB1,{written},{written},Pay Bill Online,Completed,1.00,,,,,,,\n"
    (line,) = parse(text).lines
    assert line.completed_at == utc
    assert line.completed_at.tzinfo is UTC
    assert line.initiated_at == utc


def test_mixed_time_formats_in_one_file():
    text = (
        f"{FULL}\n"
        "AB1,03-02-2026 10:15:00,,Pay Bill Online,Completed,1.00,,,,,,,\n"
        "AB2,2026-02-03 10:16:00,,Pay Bill Online,Completed,1.00,,,,,,,\n"
        "AB3,03-02-2026 10:17,,Pay Bill Online,Completed,1.00,,,,,,,\n"
    )
    minutes = [line.completed_at.minute for line in parse(text).lines]
    assert minutes == [15, 16, 17]


# --- Amounts ---------------------------------------------------------------------------------


def test_amounts_quoted_signed_and_empty():
    text = (
        f"{FULL}\n"
        'A1,2026-09-03 17:00:00,,Pay Bill Online,Completed,"1,053.00",,"12,345,678.90",,,,,\n'
        "A2,2026-09-03 17:01:00,,Withdraw Funds to Bank,Completed,,-4000.00,-5.50,,,,,\n"
        "A3,2026-09-03 17:02:00,,Pay Bill Charge,Completed,,15.00,,,,,,\n"
        "A4,2026-09-03 17:03:00,,Pay Bill Online,Completed,7,,,,,,,\n"
        "A5,2026-09-03 17:04:00,,Odd,Completed,-20.00,,,,,,,\n"
    )
    a1, a2, a3, a4, a5 = parse(text).lines
    assert (a1.paid_in_cents, a1.withdrawn_cents, a1.balance_cents) == (105300, 0, 1234567890)
    assert (a2.paid_in_cents, a2.withdrawn_cents, a2.balance_cents) == (0, 400000, -550)
    assert (a3.paid_in_cents, a3.withdrawn_cents, a3.balance_cents) == (0, 1500, None)
    assert (a4.paid_in_cents, a4.amount_kes) == (700, 7)
    # Money out in the Paid In column is still money out.
    assert (a5.paid_in_cents, a5.withdrawn_cents) == (0, 2000)
    assert not any(line.is_incoming_payment for line in (a2, a3, a5))


# --- Order, vocabulary, parties ----------------------------------------------------------------


def test_newest_first_and_oldest_first():
    older = "A1,2026-09-03 08:00:00,,Pay Bill Online,Completed,1.00,,,,,,,"
    newer = "A2,2026-09-03 09:00:00,,Pay Bill Online,Completed,1.00,,,,,,,"
    assert parse(f"{FULL}\n{newer}\n{older}\n").newest_first is True
    assert parse(f"{FULL}\n{older}\n{newer}\n").newest_first is False
    assert parse(f"{FULL}\n{older}\n").newest_first is False
    assert parse(f"{FULL}\n").newest_first is False


@pytest.mark.parametrize(
    ("details", "reason", "incoming"),
    [
        ("Pay Bill Online", "Pay Bill Online", True),
        ("Pay Bill from 2547****678 - JANE DOE Acc. R-000001", "", True),
        ("Merchant Payment Online", "", True),
        ("Customer Merchant Payment", "", True),
        ("Pay Utility", "", True),
        ("Pay Bill Charge", "", False),
        ("Business Pay Bill Charge", "", False),
        ("", "Business Pay Bill Charge", False),
        ("Organization Settle to Bank", "", False),
        ("Withdraw Funds to Bank", "", False),
        ("Transfer from Utility Account to Working Account", "", False),
        ("Reversal", "", False),
        ("Something new", "", True),  # unknown money in is shown, not hidden
    ],
)
def test_incoming_payment_vocabulary(details, reason, incoming):
    text = f'{FULL}\nA1,2026-09-03 17:00:00,,"{details}",Completed,10.00,,,,{reason},,,\n'
    (line,) = parse(text).lines
    assert line.is_incoming_payment is incoming


@pytest.mark.parametrize("status", ["Failed", "Cancelled", "Expired", "Pending"])
def test_only_completed_lines_are_payments(status):
    text = f"{FULL}\nA1,2026-09-03 17:00:00,,Pay Bill Online,{status},10.00,,,,,,,\n"
    (line,) = parse(text).lines
    assert line.status == status
    assert not line.completed and not line.is_incoming_payment


def test_reversals_by_name_and_by_linked_receipt():
    text = (
        f"{FULL}\n"
        "R1,2026-09-03 17:00:00,,Reversal of Pay Bill Online,Completed,,-10.00,,,,,QKR1,\n"
        "R2,2026-09-03 17:00:00,,Pay Bill Online,Completed,,10.00,,,,,QKR2,\n"
        "R3,2026-09-03 17:00:00,,Pay Bill Charge,Completed,,1.00,,,,,QKR3,\n"
        "R4,2026-09-03 17:00:00,,Pay Bill Online,Completed,10.00,,,,,,QKR4,\n"
    )
    r1, r2, r3, r4 = parse(text).lines
    assert r1.is_reversal and r2.is_reversal
    assert not r3.is_reversal  # a fee linked to its payment is not a refund
    assert not r4.is_reversal and r4.is_incoming_payment


@pytest.mark.parametrize(
    ("party", "phone", "name"),
    [
        ("254712345678 - JANE DOE", "254712345678", "JANE DOE"),
        ("2547****678 - ANN", "2547****678", "ANN"),
        ("2547 ***** 126 - JO", "2547*****126", "JO"),
        ("0712345678 - JO", "254712345678", "JO"),
        ("+254712345678", "254712345678", ""),
        ("KCB BANK", None, "KCB BANK"),
        ("556677 - ACME LTD", None, "556677 - ACME LTD"),  # a shortcode, not a phone
        ("254*******", None, "254*******"),  # nothing visible to compare
        ("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", None, None),
    ],
)
def test_other_party_info(party, phone, name):
    text = f"{FULL}\nA1,2026-09-03 17:00:00,,Pay Bill Online,Completed,10.00,,,,,{party},,\n"
    (line,) = parse(text).lines
    assert line.other_party == party
    assert line.phone_digits_visible == phone
    assert line.party_name == (party if name is None else name)


# --- Encodings and layouts ---------------------------------------------------------------------


def test_utf8_bom_crlf_and_cp1252():
    body = (PREAMBLE + FULL + "\n" + PAY + "\n").replace("JANE DOE", "RENÉE").replace("\n", "\r\n")
    for data in (b"\xef\xbb\xbf" + body.encode(), body.encode("cp1252")):
        statement = parse_statement(data)
        assert statement.organisation == "ACME LTD"
        assert statement.lines[0].party_name == "RENÉE"
        assert statement.lines[0].line == 7


def test_latin1_fallback():
    data = (FULL + "\n" + PAY + "\n").encode().replace(b"JANE", b"JA\x81NE")
    (line,) = parse_statement(data).lines
    assert line.receipt == "QKR12XYZ9"


def test_semicolons_tabs_and_utf16():
    """A statement saved again by a spreadsheet in another locale."""
    semicolons = (
        "Receipt No.;Completion Time;Transaction Status;Paid In\n"
        'A1;2026-09-03 17:00:00;Completed;"1,053.00"\n'
    )
    assert parse(semicolons).lines[0].paid_in_cents == 105300
    tabs = semicolons.replace(";", "\t")
    assert parse_statement(tabs.encode("utf-16")).lines[0].paid_in_cents == 105300
    error = refusal(semicolons.replace('"1,053.00"', "1 053"))
    assert str(error) == 'Line 2: the amount "1 053" in Paid In is not a number.'


def test_trailing_empty_cells_and_short_rows_are_tolerated():
    text = (
        f"{FULL}\n"
        "A1,2026-09-03 17:00:00,,Pay Bill Online,Completed,10.00,,,,,,,,,,\n"
        "A2,2026-09-03 17:00:01,,Pay Bill Online,Completed,10.00\n"
        ",,,,,,,,,,,,,,,,\n"
        "\n"
    )
    a1, a2 = parse(text).lines
    assert (a1.line, a2.line) == (2, 3)
    assert a2.withdrawn_cents == 0 and a2.account is None


def test_identical_repeated_lines_and_headings_are_dropped():
    text = f"{FULL}\n{PAY}\n{CHARGE}\n\n{FULL}\n{PAY}\n{CHARGE}\n"
    statement = parse(text)
    assert [line.line for line in statement.lines] == [2, 3]
    assert statement.repeated_lines == 2


def test_empty_statement_is_fine():
    statement = parse(PREAMBLE + FULL + "\n")
    assert statement.lines == []
    assert statement.shortcode == "556677"


def test_matching_shortcode_is_accepted():
    assert parse(PREAMBLE + FULL + "\n", shortcode="556677").shortcode == "556677"
    # No shortcode in the file: nothing to contradict.
    assert parse(FULL + "\n", shortcode="174379").shortcode is None


# --- Excel -----------------------------------------------------------------------------------


def test_excel_export_reads_like_the_csv():
    openpyxl = pytest.importorskip("openpyxl")
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["Organization Name:", "ACME LTD"])
    sheet.append(["Paybill", 556677])
    sheet.append([])
    sheet.append(FULL.split(","))
    sheet.append(
        [
            "qkr12xyz9",
            datetime(2026, 9, 3, 17, 0),
            "2026-09-03 16:59:52",
            "Pay Bill Online",
            "Completed",
            1053.0,
            None,
            5053.5,
            "true",
            "Pay Bill Online",
            "2547****678 - ANN",
            None,
            "R-1",
        ]
    )
    sheet.append(
        ["QKR12XYZ9", "2026-09-03 17:00:00", None, "Pay Bill Charge", "Completed", None, -15]
    )
    buffer = io.BytesIO()
    book.save(buffer)
    statement = parse_statement(buffer.getvalue(), filename="statement.xlsx", shortcode="556677")
    assert statement.organisation == "ACME LTD"
    pay, charge = statement.lines
    assert (pay.line, pay.receipt, pay.paid_in_cents, pay.balance_cents) == (
        5,
        "QKR12XYZ9",
        105300,
        505350,
    )
    assert pay.completed_at == datetime(2026, 9, 3, 14, 0, tzinfo=UTC)
    assert pay.phone_digits_visible == "2547****678"
    assert (charge.line, charge.withdrawn_cents) == (6, 1500)


def test_excel_refusals_name_the_row():
    openpyxl = pytest.importorskip("openpyxl")
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["Receipt No.", "Completion Time", "Transaction Status", "Paid In"])
    sheet.append(["A1", "2026-09-03 17:00:00", "Completed", "12,x0.00"])
    buffer = io.BytesIO()
    book.save(buffer)
    error = refusal(buffer.getvalue())
    assert str(error) == 'Line 2: the amount "12,x0.00" in Paid In is not a number.'


def test_damaged_excel_is_refused():
    pytest.importorskip("openpyxl")
    broken = io.BytesIO()
    with zipfile.ZipFile(broken, "w") as archive:
        archive.writestr("hello.txt", "not a workbook")
    assert refusal(broken.getvalue()).msgid == reader.BAD_EXCEL
    assert refusal(b"PK\x03\x04" + b"\x00" * 100).msgid == reader.BAD_EXCEL


def test_excel_zip_bomb_is_refused_before_reading(monkeypatch):
    pytest.importorskip("openpyxl")
    monkeypatch.setattr(reader, "MAX_UNPACKED_XLSX_BYTES", 1000)
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/worksheets/sheet1.xml", "0" * 5000)
    error = refusal(bomb.getvalue())
    assert error.msgid == reader.TOO_BIG


# --- Refusals ----------------------------------------------------------------------------------


@pytest.mark.parametrize("data", [b"", b"   \r\n", b"\r\n,\r\n,,,\r\n", b"\xef\xbb\xbf"])
def test_empty_file(data):
    error = refusal(data)
    assert error.msgid == reader.EMPTY and error.line is None


@pytest.mark.parametrize(
    "data",
    [
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
        b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff",
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 50,  # old .xls
        b"Receipt No.,Completion Time\x07,Transaction Status,Paid In\n",
        b"\xff\xfe\x00\xd8",  # UTF-16 that does not decode
    ],
)
def test_binary_is_not_a_csv_statement(data):
    error = refusal(data)
    assert error.msgid == reader.NOT_CSV
    assert str(error).startswith("This is not a CSV statement from the M-PESA portal.")


def test_pdf_is_named():
    assert refusal(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n").msgid == reader.PDF
    assert refusal(b"\x00\x01garbage", filename="Statement.PDF").msgid == reader.PDF


@pytest.mark.parametrize(
    "text",
    [
        "hello world\n",
        "Date,Description,Amount\n2026-09-03,Coffee,100\n",
        "Organization Name:,ACME\nTime Period:,01-09-2026 - 30-09-2026\n",
        "Transaction ID,Receipt No.,Completion Time\n",
    ],
)
def test_no_heading_row(text):
    error = refusal(text)
    assert error.msgid == reader.NO_HEADER
    assert '"Receipt No."' in str(error)


@pytest.mark.parametrize(
    ("heading", "missing"),
    [
        ("Receipt No.,Details,Transaction Status,Paid In", '"Completion Time"'),
        ("Receipt No.,Completion Time,Details,Paid In,Withdrawn", '"Transaction Status"'),
        ("Receipt No.,Completion Time,Transaction Status,Withdrawn", '"Paid In"'),
        ("Receipt No.,Details", '"Completion Time", "Transaction Status", "Paid In"'),
    ],
)
def test_missing_required_column_is_named(heading, missing):
    error = refusal("Paybill,556677\n" + heading + "\n")
    assert error.msgid == reader.MISSING_COLUMNS
    assert error.line == 2
    assert str(error).startswith(f"Line 2: the headings lack {missing}.")


def test_wrong_shortcode():
    error = refusal(PREAMBLE + FULL + "\n" + PAY + "\n", shortcode="174379")
    assert str(error) == "This statement is for 556677, not for this till (174379)."
    assert error.params == {"line": 3, "found": "556677", "expected": "174379"}


def test_too_many_cells():
    text = (
        f"{FULL}\n{PAY}\n"
        "A2,2026-09-03 17:00:00,,Pay Bill from 2547****678 - JANE, Acc. 1,Completed,10.00,,,,,,,\n"
    )
    error = refusal(text)
    assert error.msgid == reader.TOO_MANY_CELLS
    assert error.line == 3
    assert str(error).startswith("Line 3 has 14 values but the headings have only 13.")


def test_too_few_cells():
    error = refusal(f"{PREAMBLE}{FULL}\n{PAY}\nA2,2026-09-03 17:00:00,,Pay Bill Online,Completed\n")
    assert error.msgid == reader.TOO_FEW_CELLS
    assert str(error) == ("Line 8 has only 5 values; at least 6 are needed to reach Paid In.")


def test_unclosed_quote_names_its_line():
    text = f'{FULL}\n{PAY}\nA2,2026-09-03 17:00:00,,"Pay Bill Online,Completed,1.00,,,,,,,\nA3,x\n'
    error = refusal(text)
    assert error.msgid == reader.UNREADABLE_LINE
    assert error.line == 3
    assert str(error).startswith("Line 3 cannot be read")


def test_huge_field_names_its_line():
    text = f'{FULL}\n{PAY}\n\nA2,2026-09-03 17:00:00,,"{"x" * 200_000}\n'
    error = refusal(text)
    assert error.msgid == reader.UNREADABLE_LINE
    assert error.line == 4


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (
            'A1,2026-09-03 17:00:00,,Pay Bill Online,Completed,"12,x0.00",,,,,,,',
            'Line 14: the amount "12,x0.00" in Paid In is not a number.',
        ),
        (
            "A1,2026-09-03 17:00:00,,Pay Bill Online,Completed,10.00,ten,,,,,,",
            'Line 14: the amount "ten" in Withdrawn is not a number.',
        ),
        (
            "A1,2026-09-03 17:00:00,,Pay Bill Online,Completed,10.00,,1.234,,,,,",
            'Line 14: the amount "1.234" in Balance is not a number.',
        ),
        (
            'A1,2026-09-03 17:00:00,,Pay Bill Online,Completed,"1,05.00",,,,,,,',
            'Line 14: the amount "1,05.00" in Paid In is not a number.',
        ),
        (
            "A1,yesterday,,Pay Bill Online,Completed,10.00,,,,,,,",
            'Line 14: the time "yesterday" in Completion Time is not a date and time.',
        ),
        (
            "A1,2026-09-03,,Pay Bill Online,Completed,10.00,,,,,,,",
            'Line 14: the time "2026-09-03" in Completion Time is not a date and time.',
        ),
        (
            "A1,31-02-2026 10:00:00,,Pay Bill Online,Completed,10.00,,,,,,,",
            'Line 14: the time "31-02-2026 10:00:00" in Completion Time is not a date and time.',
        ),
        (
            "A1,2026-09-03 17:00:00,2026-09-03 25:00:00,Pay Bill Online,Completed,10.00,,,,,,,",
            'Line 14: the time "2026-09-03 25:00:00" in Initiation Time is not a date and time.',
        ),
        (
            "A1,0001-01-01 01:00:00,,Pay Bill Online,Completed,10.00,,,,,,,",
            'Line 14: the time "0001-01-01 01:00:00" in Completion Time is not a date and time.',
        ),
        (
            ",2026-09-03 17:00:00,,Pay Bill Online,Completed,10.00,,,,,,,",
            "Line 14 has no receipt number.",
        ),
        (
            "QK R1,2026-09-03 17:00:00,,Pay Bill Online,Completed,10.00,,,,,,,",
            'Line 14: "QK R1" is not an M-PESA receipt number.',
        ),
    ],
)
def test_bad_values_name_line_column_and_value(row, message):
    filler = "\n".join(
        f"F{n},2026-09-03 10:00:00,,Pay Bill Online,Completed,1.00,,,,,,," for n in range(7)
    )
    error = refusal(f"{PREAMBLE}{FULL}\n{filler}\n{row}\n")
    assert str(error) == message
    assert error.line == 14


def test_long_junk_is_shortened_in_the_message():
    error = refusal(f"{FULL}\nA1,{'9' * 500},,x,Completed,1,,,,,,,\n")
    assert len(str(error)) < 150


def test_duplicate_receipt_with_different_content():
    other = PAY.replace('"1,053.00"', '"2,000.00"')
    error = refusal(f"{PREAMBLE}{FULL}\n{PAY}\n{CHARGE}\n{other}\n")
    assert error.msgid == reader.DUPLICATE
    assert str(error).startswith("Line 9 repeats receipt QKR12XYZ9 from line 7, with different")


def test_oversized_file_is_refused_before_reading(monkeypatch):
    def never(*_args: object) -> None:
        raise AssertionError("the file was read")

    monkeypatch.setattr(reader, "_decode", never)
    monkeypatch.setattr(reader, "_xlsx_rows", never)
    for size in (MAX_BYTES + 1, 50 * 1024 * 1024):
        error = refusal(b"PK\x03\x04" + b"," * (size - 4))
        assert error.msgid == reader.TOO_BIG
        assert error.params["limit"] == 20
    assert "50.0 MB" in str(error)


def test_every_message_is_marked_for_translation():
    from babel.messages.extract import extract_python

    source = io.BytesIO(Path(reader.__file__).read_bytes())
    extracted = {msg for _l, _f, msg, _c in extract_python(source, ["N_"], [], {})}
    constants = [
        value
        for name, value in vars(reader).items()
        if name.isupper() and isinstance(value, str) and not name.startswith("_")
    ]
    assert len(constants) >= 15
    assert set(constants) <= extracted


# --- Anything else is a StatementError ---------------------------------------------------------

PROPERTY_SETTINGS = settings(
    max_examples=300,
    deadline=None,
    database=None,  # no .hypothesis/ directory in the repo
    suppress_health_check=[HealthCheck.too_slow],
)


def _check(data: bytes) -> None:
    try:
        statement = parse_statement(data)
    except StatementError:
        return
    for line in statement.lines:
        assert line.completed_at.tzinfo is UTC
        assert line.paid_in_cents >= 0 and line.withdrawn_cents >= 0
        assert line.receipt == line.receipt.upper()


@PROPERTY_SETTINGS
@given(st.binary(max_size=600))
def test_junk_bytes_give_a_statement_or_a_statement_error(data: bytes) -> None:
    _check(data)
    _check(b"PK\x03\x04" + data)
    _check(FULL.encode() + b"\n" + data)


_CELL = st.one_of(
    st.sampled_from(
        [
            "",
            "A1",
            "qkr12xyz9",
            "2026-09-03 17:00:00",
            "03-02-2026 10:15",
            "31/12/9999 23:59:59",
            "01-01-0001 00:00",
            "Completed",
            "Failed",
            '"1,053.00"',
            "-4000.00",
            "15.00",
            "1" * 40,
            "Pay Bill Charge",
            "Reversal",
            "2547****678 - ANN",
            "254712345678",
            "*",
            '"',
            "Receipt No.",
            "Paybill",
            "Time Period:",
        ]
    ),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=12),
)
_ROW = st.lists(_CELL, max_size=16).map(",".join)


@PROPERTY_SETTINGS
@given(st.lists(_ROW, max_size=12), st.sampled_from(["\n", "\r\n", "\r"]))
def test_near_statements_give_a_statement_or_a_statement_error(rows, newline) -> None:
    _check(newline.join([FULL, *rows]).encode())
    _check(newline.join(["Paybill,1234", "", FULL, *rows]).encode("cp1252", "replace"))
