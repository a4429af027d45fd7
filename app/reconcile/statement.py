"""Read the statement an owner exports from the M-PESA organisation portal (CSV or Excel)."""

from __future__ import annotations

import csv
import io
import re
import warnings
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta

from app.i18n import N_

#: Larger uploads are refused before anything is read: a month of a busy till is a few MB.
MAX_BYTES = 20 * 1024 * 1024
#: An .xlsx is a zip; its unpacked size is capped too, so a small "zip bomb" cannot fill memory.
MAX_UNPACKED_XLSX_BYTES = 10 * MAX_BYTES

# The portal writes Nairobi wall-clock times without a zone. Kenya has kept UTC+3 all year
# since 1960 (no daylight saving), so a fixed offset is exact and much faster than ZoneInfo
# over 100,000 lines.
_NAIROBI_OFFSET = timedelta(hours=3)

_ZIP_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0"  # the old binary .xls
_PDF_MAGIC = b"%PDF"

# --- Messages (msgid % params is the English text; the UI translates msgid) -----------------

TOO_BIG = N_(
    "The file is %(size)s MB; the largest statement accepted is %(limit)s MB. "
    "Export a shorter period from the M-PESA portal."
)
EMPTY = N_("The file is empty. Export the statement again from the M-PESA portal.")
NOT_CSV = N_(
    "This is not a CSV statement from the M-PESA portal. On the portal, export the "
    "statement as CSV (or Excel) and upload that file."
)
PDF = N_(
    "This is a PDF statement, which PesaDesk cannot read. On the M-PESA portal, export the "
    "same statement as CSV (or Excel) and upload that file."
)
BAD_EXCEL = N_(
    "This Excel file could not be read. Export the statement again from the M-PESA portal, "
    "as CSV if you can."
)
NO_HEADER = N_(
    'No line starts with the heading "Receipt No.", so this is not a statement from the '
    "M-PESA portal, or its headings were changed. Upload the file exactly as the portal "
    "exported it."
)
MISSING_COLUMNS = N_(
    "Line %(line)s: the headings lack %(columns)s. Export the statement again from the "
    "M-PESA portal with all its columns."
)
WRONG_SHORTCODE = N_("This statement is for %(found)s, not for this till (%(expected)s).")
UNREADABLE_LINE = N_(
    'Line %(line)s cannot be read: a value may have an opening quote (") without its closing quote.'
)
TOO_MANY_CELLS = N_(
    "Line %(line)s has %(found)s values but the headings have only %(expected)s. A comma "
    "inside a value may have lost its quotes."
)
TOO_FEW_CELLS = N_(
    "Line %(line)s has only %(found)s values; at least %(expected)s are needed to reach %(column)s."
)
NO_RECEIPT = N_("Line %(line)s has no receipt number.")
BAD_RECEIPT = N_('Line %(line)s: "%(value)s" is not an M-PESA receipt number.')
BAD_TIME = N_('Line %(line)s: the time "%(value)s" in %(column)s is not a date and time.')
BAD_AMOUNT = N_('Line %(line)s: the amount "%(value)s" in %(column)s is not a number.')
DUPLICATE = N_(
    "Line %(line)s repeats receipt %(receipt)s from line %(first)s, with different "
    "details. Export the statement again from the M-PESA portal."
)


class StatementError(ValueError):
    """A file that cannot be read as a statement. `msgid` % `params` is the English message
    for the owner; the UI translates `msgid` and fills in `params`; `line` is the line (or
    Excel row) at fault, when there is one."""

    def __init__(self, msgid: str, *, line: int | None = None, **params: object) -> None:
        if line is not None:
            params = {"line": line, **params}
        super().__init__(msgid % params if params else msgid)
        self.msgid = msgid
        self.line = line
        self.params: dict[str, object] = params


# --- Columns ---------------------------------------------------------------------------------

# Canonical field → the heading as the portal spells it (used in messages).
_DISPLAY = {
    "receipt": "Receipt No.",
    "completed": "Completion Time",
    "initiated": "Initiation Time",
    "details": "Details",
    "status": "Transaction Status",
    "paid_in": "Paid In",
    "withdrawn": "Withdrawn",
    "balance": "Balance",
    "reason": "Reason Type",
    "other_party": "Other Party Info",
    "linked": "Linked Transaction ID",
    "account": "A/C No.",
}
_BY_KEY = {
    "receiptno": "receipt",
    "completiontime": "completed",
    "initiationtime": "initiated",
    "details": "details",
    "transactionstatus": "status",
    "paidin": "paid_in",
    "withdrawn": "withdrawn",
    "balance": "balance",
    "reasontype": "reason",
    "otherpartyinfo": "other_party",
    "linkedtransactionid": "linked",
    "a/cno": "account",
}
_REQUIRED = ("receipt", "completed", "status", "paid_in")
_SPACES = re.compile(r"\s+")


def _heading_key(cell: str) -> str:
    """ "Receipt No.", "receipt no" and "RECEIPT  NO." are one heading."""
    return _SPACES.sub("", cell).casefold().rstrip(".:")


# --- Preamble --------------------------------------------------------------------------------

_NOT_ALNUM = re.compile(r"[^0-9a-z]+")
_ORGANISATION_KEYS = frozenset(
    {"organizationname", "organisationname", "organization", "organisation", "businessname"}
)
_PERIOD_KEYS = frozenset({"timeperiod", "period", "statementperiod"})
_SHORTCODE_KEYS = frozenset(
    {
        "paybill",
        "paybillno",
        "paybillnumber",
        "till",
        "tillno",
        "tillnumber",
        "buygoodstill",
        "shortcode",
        "businessshortcode",
        "organizationshortcode",
        "organisationshortcode",
    }
)
_SHORTCODE = re.compile(r"(?<![0-9])[0-9]{4,10}(?![0-9])")
_PERIOD_DATE = re.compile(
    r"(?<![0-9])(?:([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})"
    r"|([0-9]{1,2})[-/.]([0-9]{1,2})[-/.]([0-9]{4}))(?![0-9])"
)


def _period_date(match: re.Match[str]) -> date:
    y, m, d, d2, m2, y2 = match.groups()
    if y:
        return date(int(y), int(m), int(d))
    return date(int(y2), int(m2), int(d2))


def _period(text: str) -> tuple[date, date] | None:
    found = list(_PERIOD_DATE.finditer(text))
    if len(found) < 2:
        return None
    try:
        start, end = _period_date(found[0]), _period_date(found[1])
    except ValueError:
        return None
    # A period that ends before it starts is a typo we cannot correct: ignore it rather than
    # guess, so the covered range falls back to the lines' own times.
    return (start, end) if start <= end else None


# --- Values ----------------------------------------------------------------------------------

# [0-9], never \d: \d also takes Arabic-Indic and fullwidth digits, which no export writes.
# Amounts are capped at 15 digits: int() refuses over 4,300 digits, and no till holds more.
_AMOUNT = re.compile(r"([+-]?)([0-9]{1,3}(?:,[0-9]{3}){1,4}|[0-9]{1,15})(?:\.([0-9]{0,2}))?")
_CLOCK = r"[ T]+([0-9]{1,2}):([0-9]{2})(?::([0-9]{2})(?:\.[0-9]{1,6})?)?(?:\s*([AaPp])\.?[Mm]\.?)?"
_ISO_TIME = re.compile(r"([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})" + _CLOCK)
# Day first, as every export seen writes it ("03-02-2026" is 3 February).
_DMY_TIME = re.compile(r"([0-9]{1,2})[-/.]([0-9]{1,2})[-/.]([0-9]{4})" + _CLOCK)
_RECEIPT = re.compile(r"[A-Z0-9]{1,32}")
# "254712345678 - JANE DOE", "2547****678 - ANN", "2547 ***** 126 - JO", or a name alone.
_PARTY = re.compile(r"\s*(\+?[0-9*](?:[0-9* ]*[0-9*])?)\s*(?:-\s*(.*?))?\s*", re.S)
# When there is no Other Party Info column: "Pay Bill from 2547****678 - JANE DOE Acc. R-1".
_DETAILS_PHONE = re.compile(r"\bfrom\s+(\+?[0-9][0-9*]*(?: [0-9*]+)*)", re.I)
_DETAILS_ACCOUNT = re.compile(r"\bAcc\.?\s+(\S.*?)\s*$", re.I)
# Lines that move no customer's payment: the fee M-PESA takes, and money moved out to the bank
# or between the organisation's own accounts ("Utility Account to Working Account").
_CHARGE_OR_SETTLEMENT = re.compile(
    r"\bcharges?\b|\bsettle|\bwithdraw|\bto bank\b|\baccount to\b|\brevenue\b", re.I
)
_REVERSAL = re.compile(r"revers", re.I)
# Only tab, line feed and carriage return belong in a text file; other control characters
# mean a binary file (an image, a zip, a Word document) was uploaded by mistake.
_BINARY = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_HEADER_LINE = re.compile(
    r'^\ufeff?[ \t]*"?[ \t]*receipt[ \t]*no\.?[ \t]*"?[ \t]*([,;\t])', re.I | re.M
)


def _short(value: str, limit: int = 40) -> str:
    """The value as quoted in a message: junk can be long and must not flood the page."""
    value = value.strip()
    return value if len(value) <= limit else value[: limit - 1] + "…"


def _phone(token: str) -> str | None:
    """The visible digits of a phone, in the 254… form (masked digits stay `*`), or None."""
    token = token.replace(" ", "").lstrip("+")
    if token.startswith("254"):
        pass
    elif token.startswith("0") and len(token) > 1:
        token = "254" + token[1:]
    elif token[:1] in ("1", "7") and len(token) == 9:
        token = "254" + token
    else:
        return None
    if not 10 <= len(token) <= 14:
        return None
    # Three digits after the country code are the least that can tell two customers apart
    # (the token holds only digits and stars here).
    if len(token) - 3 - token.count("*", 3) < 3:
        return None
    return token


def _party(text: str) -> tuple[str | None, str]:
    """Other Party Info → (visible phone digits, name)."""
    if not text:
        return None, ""
    match = _PARTY.fullmatch(text)
    if match is None:
        return None, text
    phone = _phone(match.group(1))
    if phone is None:
        return None, text
    return phone, match.group(2) or ""


class _Clock:
    """Parses the file's times; remembers which form the file uses so most lines try one."""

    def __init__(self) -> None:
        self._forms = [_ISO_TIME, _DMY_TIME]

    def __call__(self, text: str) -> datetime | None:
        for form in self._forms:
            match = form.fullmatch(text)
            if match is not None:
                if form is not self._forms[0]:
                    self._forms.reverse()
                break
        else:
            return None
        a, b, c, hour_text, minute, second, half = match.groups()
        year, month, day = (a, b, c) if form is _ISO_TIME else (c, b, a)
        hour = int(hour_text)
        if half is not None:
            if not 1 <= hour <= 12:
                return None
            hour = hour % 12 + (12 if half in "Pp" else 0)
        try:
            local = datetime(
                int(year), int(month), int(day), hour, int(minute), int(second or 0), tzinfo=UTC
            )
            return local - _NAIROBI_OFFSET
        except (ValueError, OverflowError):
            return None


def _cents(text: str) -> int | None:
    match = _AMOUNT.fullmatch(text)
    if match is None:
        return None
    sign, whole, fraction = match.groups()
    cents = int(whole.replace(",", "")) * 100 + int((fraction or "").ljust(2, "0"))
    return -cents if sign == "-" else cents


# --- The parsed statement --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StatementLine:
    """One transaction line of the statement, as the portal wrote it."""

    line: int  # 1-based line of the file (the row, in an Excel sheet)
    receipt: str  # upper case
    completed_at: datetime  # UTC
    initiated_at: datetime | None  # UTC
    details: str
    status: str  # as in the file: "Completed", "Failed", …
    paid_in_cents: int
    withdrawn_cents: int  # money out, always ≥ 0 whichever sign the file used
    balance_cents: int | None
    reason_type: str
    other_party: str  # Other Party Info, raw
    phone_digits_visible: str | None  # "254712345678" or masked "2547****678"
    party_name: str
    linked_receipt: str | None  # Linked Transaction ID, upper case
    account: str | None  # A/C No. (our AccountReference on paybills)

    @property
    def completed(self) -> bool:
        """Only Completed lines moved money."""
        return self.status.casefold() == "completed"

    @property
    def amount_kes(self) -> int | None:
        """Paid In in whole shillings (STK amounts are whole), None when it has cents."""
        whole, cents = divmod(self.paid_in_cents, 100)
        return whole if cents == 0 else None

    @property
    def is_charge_or_settlement(self) -> bool:
        """A fee, or money moved to the bank or between the organisation's own accounts."""
        return bool(
            _CHARGE_OR_SETTLEMENT.search(self.details)
            or _CHARGE_OR_SETTLEMENT.search(self.reason_type)
        )

    @property
    def is_reversal(self) -> bool:
        """A reversal: named so, or money going back out against a linked receipt."""
        if _REVERSAL.search(self.details) or _REVERSAL.search(self.reason_type):
            return True
        # A fee linked to the payment it was taken on is no refund.
        return (
            bool(self.linked_receipt)
            and self.withdrawn_cents > 0
            and not self.is_charge_or_settlement
        )

    @property
    def is_incoming_payment(self) -> bool:
        """A customer's completed payment into the till (Pay Bill Online, Merchant Payment…).

        Decided by exclusion: an unfamiliar Details text with money in is shown to the owner
        as a payment rather than silently ignored."""
        return (
            self.paid_in_cents > 0
            and self.completed
            and not self.is_charge_or_settlement
            and not self.is_reversal
        )


@dataclass(slots=True)
class Statement:
    lines: list[StatementLine]
    shortcode: str | None = None  # from the preamble (Paybill, Till, Short Code…)
    organisation: str | None = None
    period: tuple[date, date] | None = None  # Nairobi days, both included
    newest_first: bool = False
    #: lines dropped because an earlier line of the file was identical
    repeated_lines: int = 0
    #: the headings of the file, as written
    headings: list[str] = field(default_factory=list)


# --- Reading ---------------------------------------------------------------------------------

_Rows = Iterator[tuple[int, list[str]]]


def parse_statement(data: bytes, *, filename: str = "", shortcode: str | None = None) -> Statement:
    """Read a portal statement (CSV, or .xlsx when openpyxl is installed) or raise
    StatementError. With `shortcode`, a statement whose preamble names another shortcode is
    refused. `filename` is only a hint for the message: the content decides the format."""
    if len(data) > MAX_BYTES:
        raise StatementError(
            TOO_BIG, size=f"{len(data) / 1024 / 1024:.1f}", limit=MAX_BYTES // 1024 // 1024
        )
    if not data.strip():
        raise StatementError(EMPTY)
    if data.startswith(_PDF_MAGIC):
        raise StatementError(PDF)
    if data.startswith(_ZIP_MAGIC):
        rows: _Rows = _xlsx_rows(data)
    elif data.startswith(_OLE_MAGIC):
        raise StatementError(NOT_CSV)
    else:
        try:
            rows = _csv_rows(_decode(data))
        except StatementError as exc:
            # A PDF whose first bytes were damaged or stripped still deserves the PDF advice.
            if exc.msgid == NOT_CSV and filename.lower().endswith(".pdf"):
                raise StatementError(PDF) from None
            raise
    return _read(rows, shortcode.strip() if shortcode else None)


def _decode(data: bytes) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        # Excel's "Unicode text" export.
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError:
            raise StatementError(NOT_CSV) from None
    elif b"\x00" in data:
        raise StatementError(NOT_CSV)
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            # Saved again by Excel on Windows: names with accents come as cp1252.
            try:
                text = data.decode("cp1252")
            except UnicodeDecodeError:
                text = data.decode("latin-1")
    if _BINARY.search(text):
        raise StatementError(NOT_CSV)
    if not text.strip(" \t\r\n,;\ufeff"):
        raise StatementError(EMPTY)
    return text


def _csv_rows(text: str) -> _Rows:
    # The delimiter is the character after the "Receipt No." heading: a comma from the
    # portal, a semicolon or tab when the file went through a spreadsheet in another locale.
    match = _HEADER_LINE.search(text)
    delimiter = match.group(1) if match else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    start = 1
    in_table = False
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error:
            raise StatementError(UNREADABLE_LINE, line=start) from None
        # A record over several lines is a quote left open: it swallows the lines after it,
        # which must not vanish from the statement unnoticed.
        if in_table and reader.line_num != start:
            raise StatementError(UNREADABLE_LINE, line=start)
        if not in_table and row and _heading_key(row[0].lstrip("\ufeff")) == "receiptno":
            in_table = True
        yield start, row
        start = reader.line_num + 1


def _excel_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, float):
        if value.is_integer():
            return str(int(value))
        cents = round(value * 100)
        if abs(value * 100 - cents) < 1e-6:
            sign = "-" if cents < 0 else ""
            return f"{sign}{abs(cents) // 100}.{abs(cents) % 100:02d}"
        return repr(value)
    return str(value)


def _xlsx_rows(data: bytes) -> _Rows:
    try:
        import openpyxl
    except ImportError:
        raise StatementError(NOT_CSV) from None
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, ValueError, OSError):
        raise StatementError(BAD_EXCEL) from None
    if unpacked > MAX_UNPACKED_XLSX_BYTES:
        raise StatementError(
            TOO_BIG,
            size=f"{unpacked / 1024 / 1024:.1f}",
            limit=MAX_UNPACKED_XLSX_BYTES // 1024 // 1024,
        )
    rows: list[tuple[int, list[str]]] = []
    # openpyxl raises many kinds of error on a damaged file (KeyError, zip, XML, TypeError…);
    # every one means the same thing to the owner. Its warnings (no default style, unknown
    # extensions) are about formatting we do not read.
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
            try:
                sheet = book.worksheets[0]
                for number, values in enumerate(sheet.iter_rows(values_only=True), 1):
                    cells = [_excel_text(v) for v in values]
                    while cells and not cells[-1]:
                        cells.pop()
                    rows.append((number, cells))
            finally:
                book.close()
    except Exception:
        raise StatementError(BAD_EXCEL) from None
    return iter(rows)


def _preamble_value(cells: list[str]) -> tuple[str, str]:
    filled = [c.strip() for c in cells if c.strip()]
    if not filled:
        return "", ""
    if len(filled) == 1 and ":" in filled[0]:
        key, _, value = filled[0].partition(":")
        return key, value.strip()
    return filled[0], " ".join(filled[1:])


def _read(rows: _Rows, shortcode: str | None) -> Statement:
    statement = Statement(lines=[])
    shortcode_line: int | None = None
    header: list[str] | None = None
    header_line = 0
    for number, cells in rows:
        if cells and _heading_key(cells[0].lstrip("\ufeff")) == "receiptno":
            header, header_line = cells, number
            break
        key, value = _preamble_value(cells)
        key = _NOT_ALNUM.sub("", key.casefold())
        if key in _ORGANISATION_KEYS and statement.organisation is None and value:
            statement.organisation = value
        elif key in _PERIOD_KEYS and statement.period is None:
            statement.period = _period(value)
        elif key in _SHORTCODE_KEYS and statement.shortcode is None:
            found = _SHORTCODE.search(value)
            if found:
                statement.shortcode, shortcode_line = found.group(), number
    if header is None:
        raise StatementError(NO_HEADER)
    if shortcode and statement.shortcode and statement.shortcode != shortcode:
        raise StatementError(
            WRONG_SHORTCODE, line=shortcode_line, found=statement.shortcode, expected=shortcode
        )
    statement.headings = [h.strip() for h in header]
    index = _column_index(header, header_line)
    _read_lines(rows, index, len(header), statement)
    lines = statement.lines
    statement.newest_first = len(lines) > 1 and lines[0].completed_at > lines[-1].completed_at
    return statement


def _column_index(header: list[str], line: int) -> dict[str, int]:
    index: dict[str, int] = {}
    for position, cell in enumerate(header):
        name = _BY_KEY.get(_heading_key(cell.lstrip("\ufeff")))
        if name is not None and name not in index:
            index[name] = position
    missing = [name for name in _REQUIRED if name not in index]
    if missing:
        columns = ", ".join(f'"{_DISPLAY[name]}"' for name in missing)
        raise StatementError(MISSING_COLUMNS, line=line, columns=columns)
    return index


def _read_lines(rows: _Rows, index: dict[str, int], width: int, statement: Statement) -> None:
    lines = statement.lines
    clock = _Clock()
    # Amounts repeat (the same prices, the same fees): each text is read once.
    amounts: dict[str, int] = {"": 0}
    # A receipt may head several lines: the charge taken on a payment carries the payment's
    # receipt. Only two lines that each pay or refund a customer conflict.
    by_receipt: dict[str, StatementLine] = {}
    more: dict[str, list[StatementLine]] = {}
    last_required = max(index[name] for name in _REQUIRED)
    far_column = next(name for name in _REQUIRED if index[name] == last_required)
    i_receipt = index["receipt"]
    i_completed = index["completed"]
    i_status = index["status"]
    i_paid = index["paid_in"]
    optional = {
        name: index.get(name, width)
        for name in (
            "initiated",
            "details",
            "withdrawn",
            "balance",
            "reason",
            "other_party",
            "linked",
            "account",
        )
    }
    i_initiated = optional["initiated"]
    i_details = optional["details"]
    i_withdrawn = optional["withdrawn"]
    i_balance = optional["balance"]
    i_reason = optional["reason"]
    i_party = optional["other_party"]
    i_linked = optional["linked"]
    i_account = optional["account"]
    pad = [""] * (width + 1)

    wide = 0  # the cells of this row, when it had more than the headings (all empty)

    def misplaced(number: int) -> None:
        # Empty cells past the headings are tolerated, but when the row's values do not read,
        # an unquoted comma that shifted them is the likelier story.
        if wide:
            raise StatementError(TOO_MANY_CELLS, line=number, found=wide, expected=width)

    def amount(text: str, name: str, number: int) -> int:
        cents = _cents(text)
        if cents is None:
            misplaced(number)
            raise StatementError(BAD_AMOUNT, line=number, value=_short(text), column=_DISPLAY[name])
        amounts[text] = cents
        return cents

    def moment(text: str, name: str, number: int) -> datetime:
        value = clock(text)
        if value is None:
            misplaced(number)
            raise StatementError(BAD_TIME, line=number, value=_short(text), column=_DISPLAY[name])
        return value

    for number, cells in rows:
        count = len(cells)
        wide = 0
        if count > width:
            if any(cell.strip() for cell in cells[width:]):
                raise StatementError(TOO_MANY_CELLS, line=number, found=count, expected=width)
            wide = count
            del cells[width:]
            count = width
        if count <= last_required:
            if not "".join(cells).strip():
                continue  # an empty line, or a lone comma
            raise StatementError(
                TOO_FEW_CELLS,
                line=number,
                found=count,
                expected=last_required + 1,
                column=_DISPLAY[far_column],
            )
        # Missing trailing cells read as empty, and so do the columns this export lacks (they
        # point one past the last heading).
        cells += pad[: width + 1 - count]
        receipt = cells[i_receipt].strip().upper()
        if not receipt:
            if not "".join(cells).strip():
                continue
            raise StatementError(NO_RECEIPT, line=number)
        if _RECEIPT.fullmatch(receipt) is None:
            if _heading_key(receipt) == "receiptno":
                continue  # the headings again, where two exports were pasted together
            misplaced(number)
            raise StatementError(BAD_RECEIPT, line=number, value=_short(cells[i_receipt]))
        completed_at = moment(cells[i_completed].strip(), "completed", number)
        text = cells[i_initiated].strip()
        initiated_at = moment(text, "initiated", number) if text else None
        text = cells[i_paid].strip()
        paid_in = amounts.get(text)
        if paid_in is None:
            paid_in = amount(text, "paid_in", number)
        text = cells[i_withdrawn].strip()
        withdrawn = amounts.get(text)
        if withdrawn is None:
            withdrawn = amount(text, "withdrawn", number)
        withdrawn = abs(withdrawn)
        if paid_in < 0:
            # Money out written in the Paid In column: it is still money out.
            withdrawn, paid_in = withdrawn - paid_in, 0
        text = cells[i_balance].strip()
        balance = amount(text, "balance", number) if text else None
        details = cells[i_details].strip()
        other_party = cells[i_party].strip()
        phone, name = _party(other_party)
        if phone is None and not other_party and details:
            found = _DETAILS_PHONE.search(details)
            phone = _phone(found.group(1)) if found else None
        account = cells[i_account].strip() or None
        if account is None and i_account == width and details:
            found = _DETAILS_ACCOUNT.search(details)
            account = found.group(1) if found else None
        line = StatementLine(
            number,
            receipt,
            completed_at,
            initiated_at,
            details,
            cells[i_status].strip(),
            paid_in,
            withdrawn,
            balance,
            cells[i_reason].strip(),
            other_party,
            phone,
            name,
            cells[i_linked].strip().upper() or None,
            account,
        )
        first = by_receipt.get(receipt)
        if first is not None:
            same = [first, *more.get(receipt, ())]
            if any(_same_content(line, seen) for seen in same):
                statement.repeated_lines += 1
                continue
            if _is_primary(line):
                clash = next((seen for seen in same if _is_primary(seen)), None)
                if clash is not None:
                    raise StatementError(DUPLICATE, line=number, receipt=receipt, first=clash.line)
            more.setdefault(receipt, []).append(line)
        else:
            by_receipt[receipt] = line
        lines.append(line)


def _is_primary(line: StatementLine) -> bool:
    return not line.is_charge_or_settlement and not line.is_reversal


def _same_content(line: StatementLine, seen: StatementLine) -> bool:
    """The same line written twice (two exports pasted together): drop it, do not refuse."""
    if line.details != seen.details or line.paid_in_cents != seen.paid_in_cents:
        return False
    return replace(line, line=seen.line) == seen
