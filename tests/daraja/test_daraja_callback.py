"""parse_stk_callback: real-world shapes parse, everything else is a CallbackParseError."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.daraja import CallbackParseError, StkCallback, parse_stk_callback

SUCCESS: dict[str, Any] = {
    "Body": {
        "stkCallback": {
            "MerchantRequestID": "12345-67890123-1",
            "CheckoutRequestID": "ws_CO_01012025101500123712345678",
            "ResultCode": 0,
            "ResultDesc": "The service request is processed successfully.",
            "CallbackMetadata": {
                "Item": [
                    {"Name": "Amount", "Value": 150},
                    {"Name": "MpesaReceiptNumber", "Value": "ABC1DEF2GH"},
                    {"Name": "Balance"},
                    {"Name": "TransactionDate", "Value": 20250101101531},
                    {"Name": "PhoneNumber", "Value": 254712345678},
                ]
            },
        }
    }
}

FAILURE: dict[str, Any] = {
    "Body": {
        "stkCallback": {
            "MerchantRequestID": "12345-67890123-1",
            "CheckoutRequestID": "ws_CO_01012025101500123712345678",
            "ResultCode": 1032,
            "ResultDesc": "Request cancelled by user",
        }
    }
}


def _success(**changes: Any) -> dict[str, Any]:
    doc = copy.deepcopy(SUCCESS)
    doc["Body"]["stkCallback"].update(changes)
    return doc


def _items(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return doc["Body"]["stkCallback"]["CallbackMetadata"]["Item"]


def _with_item(name: str, **item: Any) -> dict[str, Any]:
    doc = _success()
    items = _items(doc)
    for i, existing in enumerate(items):
        if existing["Name"] == name:
            items[i] = {"Name": name, **item}
    return doc


def _drop(path: list[str]) -> dict[str, Any]:
    doc = _success()
    target: Any = doc
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return doc


def _drop_item(name: str) -> dict[str, Any]:
    doc = _success()
    doc["Body"]["stkCallback"]["CallbackMetadata"]["Item"] = [
        i for i in _items(doc) if i["Name"] != name
    ]
    return doc


def test_success_callback() -> None:
    cb = parse_stk_callback(json.dumps(SUCCESS).encode())
    assert cb == StkCallback(
        merchant_request_id="12345-67890123-1",
        checkout_request_id="ws_CO_01012025101500123712345678",
        result_code="0",
        result_desc="The service request is processed successfully.",
        amount=150,
        receipt_number="ABC1DEF2GH",
        transaction_date="20250101101531",
        phone="254712345678",
        phone_as_sent="254712345678",
        raw=SUCCESS,
    )
    assert cb.raw["Body"]["stkCallback"]["ResultCode"] == 0


def test_failure_without_metadata() -> None:
    cb = parse_stk_callback(json.dumps(FAILURE))
    assert (cb.result_code, cb.amount, cb.receipt_number, cb.phone) == ("1032", None, None, None)
    assert cb.result_desc == "Request cancelled by user"


def test_accepts_a_mapping() -> None:
    assert parse_stk_callback(FAILURE).result_code == "1032"


def test_success_without_metadata_is_parsed_for_the_caller_to_judge() -> None:
    doc = _success()
    del doc["Body"]["stkCallback"]["CallbackMetadata"]
    cb = parse_stk_callback(doc)
    assert cb.result_code == "0"
    assert cb.receipt_number is None
    assert cb.amount is None


@pytest.mark.parametrize(
    ("doc", "attr", "expected"),
    [
        (_success(ResultCode="0"), "result_code", "0"),
        (_success(ResultCode="1032"), "result_code", "1032"),
        (_success(ResultCode="SFC_IC0003"), "result_code", "SFC_IC0003"),
        (_with_item("Amount", Value=1.0), "amount", 1),
        (_with_item("Amount", Value="1.00"), "amount", 1),
        (_with_item("Amount", Value="150"), "amount", 150),
        (_with_item("TransactionDate", Value="20250101101531"), "transaction_date",
         "20250101101531"),
        (_with_item("PhoneNumber", Value="254712345678"), "phone", "254712345678"),
        (_with_item("Balance", Value=12.5), "receipt_number", "ABC1DEF2GH"),
        # A masked phone is not a reason to lose the payment; phone becomes None.
        (_with_item("PhoneNumber", Value="2547 ***** 678"), "phone", None),
        # ...and what was sent is kept as evidence.
        (_with_item("PhoneNumber", Value="2547 ***** 678"), "phone_as_sent", "2547 ***** 678"),
        (_with_item("PhoneNumber", Value=[254712345678]), "phone", None),
        (_drop_item("PhoneNumber"), "phone", None),
        (_drop_item("PhoneNumber"), "phone_as_sent", None),
        # Look-alikes of Daraja: the CheckoutRequestID identifies the push, the rest is kept.
        (_drop(["Body", "stkCallback", "MerchantRequestID"]), "merchant_request_id", None),
        (_success(MerchantRequestID=29115), "merchant_request_id", "29115"),
        (_with_item("TransactionDate", Value="2023-04-26 12:30:00"), "transaction_date",
         "2023-04-26 12:30:00"),
        (_with_item("TransactionDate", Value=2025010110), "transaction_date", "2025010110"),
        (_with_item("TransactionDate", Value="yesterday"), "transaction_date", "yesterday"),
        (_with_item("TransactionDate", Value={"at": 1}), "transaction_date", None),
        (_drop_item("TransactionDate"), "transaction_date", None),
        (_drop_item("TransactionDate"), "amount", 150),
        # Exactly at the column widths: still accepted.
        (_success(CheckoutRequestID="c" * 64), "checkout_request_id", "c" * 64),
        (_with_item("MpesaReceiptNumber", Value="R" * 20), "receipt_number", "R" * 20),
        (_with_item("Amount", Value=2**31 - 1), "amount", 2**31 - 1),
    ],
)  # fmt: skip
def test_tolerated_variants(doc: dict[str, Any], attr: str, expected: object) -> None:
    assert getattr(parse_stk_callback(doc), attr) == expected


def test_items_in_any_order_and_extra_fields() -> None:
    doc = _success(Unexpected={"nested": [1, 2]})
    doc["Body"]["Other"] = "x"
    doc["Extra"] = True
    items = _items(doc)
    items.reverse()
    items.insert(2, {"Name": "SomethingNew", "Value": {"a": 1}})
    items = [i for i in items if i["Name"] != "Balance"]  # Balance may be missing entirely
    doc["Body"]["stkCallback"]["CallbackMetadata"]["Item"] = items
    cb = parse_stk_callback(json.dumps(doc))
    assert (cb.amount, cb.receipt_number, cb.transaction_date, cb.phone) == (
        150,
        "ABC1DEF2GH",
        "20250101101531",
        "254712345678",
    )


BAD_INPUTS: list[tuple[str, Any]] = [
    ("empty bytes", b""),
    ("not json", b"<xml/>"),
    ("not utf-8", b"\xff\xfe\x00garbage"),
    ("json array", b"[1, 2]"),
    ("json string", '"Body"'),
    ("json null", "null"),
    ("wrong type", 12345),
    ("no Body", {"stkCallback": SUCCESS["Body"]["stkCallback"]}),
    ("Body not object", {"Body": []}),
    ("no stkCallback", {"Body": {}}),
    ("stkCallback not object", {"Body": {"stkCallback": "x"}}),
    ("no CheckoutRequestID", _drop(["Body", "stkCallback", "CheckoutRequestID"])),
    ("CheckoutRequestID number", _success(CheckoutRequestID=123)),
    ("empty CheckoutRequestID", _success(CheckoutRequestID="  ")),
    ("no ResultCode", _drop(["Body", "stkCallback", "ResultCode"])),
    ("ResultCode null", _success(ResultCode=None)),
    ("ResultCode bool", _success(ResultCode=True)),
    ("ResultCode list", _success(ResultCode=[0])),
    ("ResultCode fraction", _success(ResultCode=0.5)),
    ("ResultCode empty", _success(ResultCode=" ")),
    ("ResultDesc number", _success(ResultDesc=7)),
    ("metadata not object", _success(CallbackMetadata=[])),
    ("Item not list", _success(CallbackMetadata={"Item": {"Name": "Amount"}})),
    ("item without Name", _success(CallbackMetadata={"Item": [{"Value": 1}]})),
    ("item not object", _success(CallbackMetadata={"Item": ["Amount"]})),
    ("Amount fraction", _with_item("Amount", Value=1.5)),
    ("Amount text fraction", _with_item("Amount", Value="1.50")),
    ("Amount zero", _with_item("Amount", Value=0)),
    ("Amount negative", _with_item("Amount", Value=-5)),
    ("Amount text", _with_item("Amount", Value="ten")),
    ("Amount NaN text", _with_item("Amount", Value="NaN")),
    ("Amount huge", _with_item("Amount", Value="9e999999999")),
    ("Amount bool", _with_item("Amount", Value=True)),
    ("Amount object", _with_item("Amount", Value={"v": 1})),
    ("receipt number", _with_item("MpesaReceiptNumber", Value=12345)),
    # Values that would not fit PesaDesk's columns are refused, never truncated.
    ("receipt over 20", _with_item("MpesaReceiptNumber", Value="R" * 21)),
    ("CheckoutRequestID over 64", _success(CheckoutRequestID="c" * 65)),
    ("MerchantRequestID over 64", _success(MerchantRequestID="m" * 65)),
    ("Amount 2^31", _with_item("Amount", Value=2**31)),
    ("Amount 2^31 as text", _with_item("Amount", Value=str(2**31))),
    ("Amount 2^31 as float", _with_item("Amount", Value=float(2**31))),
    ("ResultCode over 16", _success(ResultCode="X" * 17)),
    ("TransactionDate over 32", _with_item("TransactionDate", Value="2" * 33)),
    ("two different Amounts", _success(CallbackMetadata={"Item": [
        {"Name": "Amount", "Value": 1}, {"Name": "Amount", "Value": 2}]})),
    ("deeply nested", "[" * 100_000 + "]" * 100_000),
    ("huge integer literal", '{"Body": ' + "9" * 5000 + "}"),
]  # fmt: skip


@pytest.mark.parametrize(("label", "body"), BAD_INPUTS, ids=[label for label, _ in BAD_INPUTS])
def test_bad_inputs_raise_callback_parse_error_only(label: str, body: Any) -> None:
    with pytest.raises(CallbackParseError) as info:
        parse_stk_callback(body)
    assert str(info.value), f"{label}: error must carry a message"
    assert isinstance(info.value, ValueError)


# ------------------------------------------------------------------ property tests

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=20), children, max_size=5)
    ),
    max_leaves=30,
)


# Near-valid callbacks: the real shape with fields sometimes replaced by arbitrary JSON, so
# the property reaches the field parsers and not only the "missing Body" check.
def usually(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly ``valid``, one time in four arbitrary JSON."""
    return st.integers(0, 3).flatmap(lambda i: json_values if i == 0 else valid)


def item(name: str, value: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.fixed_dictionaries({"Name": st.just(name)}, optional={"Value": usually(value)})


good_item = st.one_of(
    item("Amount", st.integers(-5, 300_000) | st.integers(1, 300_000).map(lambda n: f"{n}.00")),
    item("MpesaReceiptNumber", st.text(max_size=12)),
    item("Balance", st.floats(0, 1e6)),
    item("TransactionDate", st.integers(10**13, 10**14) | st.integers(10**13, 10**14).map(str)),
    item("PhoneNumber", st.integers(254_700_000_000, 254_799_999_999) | st.text(max_size=14)),
)
junk_item = st.fixed_dictionaries({"Name": json_values, "Value": json_values}) | json_values
items = st.lists(
    st.integers(0, 9).flatmap(lambda i: junk_item if i == 0 else good_item), max_size=7
)
near_valid = st.fixed_dictionaries(
    {
        "Body": st.fixed_dictionaries(
            {
                "stkCallback": st.fixed_dictionaries(
                    {
                        "MerchantRequestID": usually(st.just("m-1")),
                        "CheckoutRequestID": usually(st.just("ws_CO_1")),
                        "ResultCode": usually(st.sampled_from([0, "0", 1032, "1", "SFC_IC0003"])),
                    },
                    optional={
                        "ResultDesc": usually(st.just("ok")),
                        "CallbackMetadata": usually(st.fixed_dictionaries({"Item": items})),
                    },
                )
            }
        )
    }
)

PROPERTY_SETTINGS = settings(
    max_examples=200,
    deadline=None,
    database=None,  # no .hypothesis/ directory in the repo
    suppress_health_check=[HealthCheck.too_slow],
)


def _check(body: Any) -> None:
    try:
        result = parse_stk_callback(body)
    except CallbackParseError:
        return
    assert isinstance(result, StkCallback)
    assert isinstance(result.result_code, str)
    assert result.result_code
    assert result.amount is None or (isinstance(result.amount, int) and result.amount > 0)
    assert result.phone is None or (len(result.phone) == 12 and result.phone.isdigit())


@PROPERTY_SETTINGS
@given(json_values)
def test_arbitrary_json_gives_callback_or_parse_error(value: Any) -> None:
    _check(value if isinstance(value, dict) else json.dumps(value))
    _check(json.dumps(value).encode())


@PROPERTY_SETTINGS
@given(near_valid)
def test_near_valid_callbacks_give_callback_or_parse_error(doc: dict[str, Any]) -> None:
    _check(doc)
    _check(json.dumps(doc))


@PROPERTY_SETTINGS
@given(st.binary(max_size=300))
def test_arbitrary_bytes_give_callback_or_parse_error(body: bytes) -> None:
    _check(body)


@st.composite
def valid_success(draw: st.DrawFn) -> tuple[dict[str, Any], int, str, str, str]:
    """A well-formed success callback in any of its real-world spellings, plus the truth."""
    amount = draw(st.integers(1, 250_000))
    phone = draw(st.integers(254_100_000_000, 254_799_999_999))
    date = draw(st.integers(20200101000000, 20351231235959))
    receipt = draw(st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=10, max_size=10))
    item_list = [
        {"Name": "Amount", "Value": draw(st.sampled_from([amount, float(amount), f"{amount}.00"]))},
        {"Name": "MpesaReceiptNumber", "Value": receipt},
        {"Name": "TransactionDate", "Value": draw(st.sampled_from([date, str(date)]))},
        {"Name": "PhoneNumber", "Value": draw(st.sampled_from([phone, str(phone)]))},
    ]
    item_list += draw(
        st.sampled_from([[], [{"Name": "Balance"}], [{"Name": "Balance", "Value": 0}]])
    )
    item_list = draw(st.permutations(item_list))
    doc = _success(ResultCode=draw(st.sampled_from([0, "0"])))
    doc["Body"]["stkCallback"]["CallbackMetadata"]["Item"] = item_list
    return doc, amount, receipt, str(date), str(phone)


@PROPERTY_SETTINGS
@given(valid_success())
def test_valid_success_callbacks_round_trip(
    case: tuple[dict[str, Any], int, str, str, str],
) -> None:
    doc, amount, receipt, date, phone = case
    cb = parse_stk_callback(json.dumps(doc).encode())
    assert (cb.result_code, cb.amount, cb.receipt_number, cb.transaction_date, cb.phone) == (
        "0",
        amount,
        receipt,
        date,
        phone,
    )
