"""STK push acceptance, validation envelopes and the subscriber lock (docs/daraja.md §3-4)."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime, timedelta

import pytest

from app.simulator.ids import NAIROBI, daraja_timestamp

SHORTCODE = "174379"
PASSKEY = "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919"


def _password(short_code: str, timestamp: str, passkey: str = PASSKEY) -> str:
    return base64.b64encode(f"{short_code}{passkey}{timestamp}".encode()).decode()


def _assert_envelope(response, status: int, code: str, message: str) -> None:
    assert response.status_code == status, response.get_json()
    body = response.get_json()
    assert set(body) == {"requestId", "errorCode", "errorMessage"}
    assert (body["errorCode"], body["errorMessage"]) == (code, message)


def _invalid(response, field: str) -> None:
    _assert_envelope(response, 400, "400.002.02", f"Bad Request - Invalid {field}")


def test_sandbox_push_is_accepted_with_daraja_shape(daraja):
    response = daraja.push()
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == {
        "MerchantRequestID",
        "CheckoutRequestID",
        "ResponseCode",
        "ResponseDescription",
        "CustomerMessage",
    }
    assert body["ResponseCode"] == "0"
    assert body["ResponseDescription"] == "Success. Request accepted for processing"
    assert body["CustomerMessage"] == body["ResponseDescription"]
    # ws_CO_ + ddMMyyyyHHmmss (EAT) + 3-digit ms + the 9 local subscriber digits
    match = re.fullmatch(r"ws_CO_(\d{14})(\d{3})(\d{9})", body["CheckoutRequestID"])
    assert match
    assert match.group(3) == "708374149"
    minted = datetime.strptime(match.group(1), "%d%m%Y%H%M%S").replace(tzinfo=NAIROBI)
    assert abs((datetime.now(UTC) - minted).total_seconds()) < 60
    assert body["MerchantRequestID"]


def test_ids_are_unique_across_pushes(daraja):
    checkouts, merchants = set(), set()
    for n in range(10):
        body = daraja.push(PhoneNumber=f"25471100000{n}", PartyA=f"25471100000{n}").get_json()
        checkouts.add(body["CheckoutRequestID"])
        merchants.add(body["MerchantRequestID"])
    assert len(checkouts) == len(merchants) == 10


@pytest.mark.parametrize(
    "overrides",
    [
        {"Amount": "1"},
        {"Amount": 250000},
        {"Amount": 10.0},
        {"BusinessShortCode": 174379, "PartyB": 174379},
        {"PhoneNumber": 254708374149, "PartyA": 254708374149},
        {"PhoneNumber": "254114669532", "PartyA": "254114669532"},
        {"CallBackURL": "https://example.test/payments/stk/cb/abc"},
        {"AccountReference": "ABCDEFGHIJKL"},
        {"TransactionDesc": "ABCDEFGHIJKLM"},
        {"TransactionDesc": ""},
    ],
)
def test_accepted_variants(daraja, overrides):
    if "BusinessShortCode" in overrides:
        ts = daraja_timestamp()
        overrides |= {"Timestamp": ts, "Password": _password(SHORTCODE, ts)}
    response = daraja.push(**overrides)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["ResponseCode"] == "0"


def test_transaction_desc_is_optional(daraja, drop):
    # Portal rule: every field is mandatory except TransactionDesc (docs/daraja.md §3.1).
    assert daraja.push(TransactionDesc=drop).get_json()["ResponseCode"] == "0"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"BusinessShortCode": "17A379"}, "BusinessShortCode"),
        ({"BusinessShortCode": "1234"}, "BusinessShortCode"),
        ({"Password": 12345}, "Password"),
        ({"Timestamp": "2025-01-01 10:00:00"}, "Timestamp"),
        ({"Timestamp": "20251301100000"}, "Timestamp"),
        ({"TransactionType": "CustomerPayBill"}, "TransactionType"),
        ({"Amount": 0}, "Amount"),
        ({"Amount": -5}, "Amount"),
        ({"Amount": 1.5}, "Amount"),
        ({"Amount": "1.5"}, "Amount"),
        ({"Amount": "ten"}, "Amount"),
        ({"Amount": True}, "Amount"),
        ({"Amount": 250001}, "Amount"),
        ({"PartyA": "0708374149"}, "PartyA"),
        ({"PartyA": "+254708374149"}, "PartyA"),
        ({"PartyB": "till-1"}, "PartyB"),
        ({"PhoneNumber": "254808374149"}, "PhoneNumber"),
        ({"PhoneNumber": "25470837414"}, "PhoneNumber"),
        ({"PhoneNumber": "2547083741490"}, "PhoneNumber"),
        ({"CallBackURL": "ftp://example.test/cb"}, "CallBackURL"),
        ({"CallBackURL": "https://example.test/cb "}, "CallBackURL"),
        ({"CallBackURL": "not a url"}, "CallBackURL"),
        ({"CallBackURL": "https:///no-host"}, "CallBackURL"),
        ({"AccountReference": "ABCDEFGHIJKLM"}, "AccountReference"),
        ({"AccountReference": "   "}, "AccountReference"),
        ({"TransactionDesc": "ABCDEFGHIJKLMN"}, "TransactionDesc"),
        ({"TransactionDesc": 7}, "TransactionDesc"),
        ({"Remarks": "extra key"}, "Remarks"),
    ],
)
def test_invalid_field_envelopes(daraja, overrides, field):
    _invalid(daraja.push(**overrides), field)


@pytest.mark.parametrize(
    "field",
    [
        "BusinessShortCode",
        "Password",
        "Timestamp",
        "TransactionType",
        "Amount",
        "PartyA",
        "PartyB",
        "PhoneNumber",
        "CallBackURL",
        "AccountReference",
    ],
)
def test_every_mandatory_field_is_required(daraja, drop, field):
    _invalid(daraja.push(**{field: drop}), field)


def test_extra_keys_allowed_when_strict_mode_is_off(make_app, daraja_for):
    daraja = daraja_for(make_app(SIMULATOR_STRICT_KEYS=False))
    assert daraja.push(Remarks="extra").status_code == 200


def test_production_like_mode_refuses_http_callback_urls(make_app, daraja_for, daraja):
    assert daraja.push(CallBackURL="http://shop.example/cb/stk/x").status_code == 200
    strict = daraja_for(make_app(SIMULATOR_REQUIRE_HTTPS_CALLBACK=True))
    _invalid(strict.push(CallBackURL="http://shop.example/cb/stk/x"), "CallBackURL")
    assert strict.push(CallBackURL="https://shop.example/cb/stk/x").status_code == 200


def test_max_amount_is_configurable(make_app, daraja_for):
    daraja = daraja_for(make_app(SIMULATOR_MAX_AMOUNT=70000))
    _invalid(daraja.push(Amount=70001), "Amount")


def test_missing_content_type_surfaces_as_invalid_shortcode(client, daraja):
    response = client.post(
        "/simulator/mpesa/stkpush/v1/processrequest",
        data=b'{"BusinessShortCode": "174379"}',
        headers=daraja.bearer(),
    )
    _invalid(response, "BusinessShortCode")


@pytest.mark.parametrize("data", [b"{not json", b"[1, 2]", b'"text"'])
def test_malformed_json_gets_invalid_payload(client, daraja, data):
    response = client.post(
        "/simulator/mpesa/stkpush/v1/processrequest",
        data=data,
        headers={**daraja.bearer(), "Content-Type": "application/json"},
    )
    _assert_envelope(response, 400, "400.002.05", "Invalid Request Payload")


def test_push_is_post_only(client, daraja):
    response = client.get("/simulator/mpesa/stkpush/v1/processrequest", headers=daraja.bearer())
    _assert_envelope(response, 405, "405.001", "Method Not Allowed")


@pytest.mark.parametrize(
    "offset", [timedelta(minutes=-6), timedelta(minutes=6), timedelta(hours=-3)]
)
def test_timestamp_outside_skew_is_invalid(daraja, offset):
    ts = daraja_timestamp(datetime.now(NAIROBI) + offset)
    _invalid(daraja.push(Timestamp=ts, Password=_password(SHORTCODE, ts)), "Timestamp")


def test_utc_timestamp_is_rejected_because_daraja_wants_eat(daraja):
    ts = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    _invalid(daraja.push(Timestamp=ts, Password=_password(SHORTCODE, ts)), "Timestamp")


def test_skew_is_configurable_and_negative_disables_it(make_app, daraja_for):
    ts = daraja_timestamp(datetime.now(NAIROBI) - timedelta(minutes=2))
    overrides = {"Timestamp": ts, "Password": _password(SHORTCODE, ts)}
    _invalid(daraja_for(make_app(SIMULATOR_TIMESTAMP_SKEW=60)).push(**overrides), "Timestamp")
    assert daraja_for(make_app(SIMULATOR_TIMESTAMP_SKEW=-1)).push(**overrides).status_code == 200


def test_unknown_shortcode_is_merchant_does_not_exist(daraja):
    ts = daraja_timestamp()
    response = daraja.push(
        BusinessShortCode="600999",
        PartyB="600999",
        Timestamp=ts,
        Password=_password("600999", ts),
    )
    _assert_envelope(response, 500, "500.001.1001", "Merchant does not exist")


@pytest.mark.parametrize(
    "make_password",
    [
        # Timestamp inside Password differs from the body's Timestamp (byte-identical rule).
        pytest.param(lambda ts: _password(SHORTCODE, "20210628092408"), id="other-timestamp"),
        pytest.param(lambda ts: _password(SHORTCODE, ts, passkey="wrong"), id="wrong-passkey"),
        pytest.param(lambda ts: _password("600000", ts), id="other-shortcode"),
        pytest.param(lambda ts: "%%%not-base64%%%", id="not-base64"),
    ],
)
def test_wrong_password_is_merchant_validate_error(daraja, make_password):
    ts = daraja_timestamp()
    response = daraja.push(Timestamp=ts, Password=make_password(ts))
    _assert_envelope(response, 500, "500.001.1001", "[MerchantValidate] - Wrong credentials")


def test_configured_passkeys_are_used(make_app, daraja_for):
    daraja = daraja_for(make_app(SIMULATOR_PASSKEYS={600100: "my-passkey"}))
    ts = daraja_timestamp()
    good = {"BusinessShortCode": "600100", "PartyB": "600100", "Timestamp": ts}
    ok = daraja.push(**good, Password=_password("600100", ts, passkey="my-passkey"))
    assert ok.status_code == 200
    _assert_envelope(daraja.push(), 500, "500.001.1001", "Merchant does not exist")


def test_second_push_to_a_live_phone_is_locked(make_app, daraja_for):
    daraja = daraja_for(make_app(SIMULATOR_CALLBACK_DELAY=30))
    first = daraja.pushed()
    locked = daraja.push(Amount=2)
    _assert_envelope(
        locked,
        500,
        "500.001.1001",
        "Unable to lock subscriber, a transaction is already in process for the current subscriber",
    )
    # Another customer is unaffected, and deciding the first prompt frees the phone.
    assert daraja.push(PhoneNumber="254711000001", PartyA="254711000001").status_code == 200
    daraja.control("POST", f"pushes/{first}/outcome", {"result_code": 1032})
    assert daraja.push().status_code == 200


def test_lock_releases_when_the_prompt_ends(daraja):
    daraja.pushed()
    assert daraja.push().status_code == 500
    checkout = daraja.control("GET", "pushes").get_json()[0]["checkout_request_id"]
    assert daraja.final_query(checkout)["ResultCode"] == "0"
    assert daraja.push().status_code == 200


def test_buy_goods_accepts_a_till_different_from_the_store_number(daraja):
    checkout = daraja.pushed(TransactionType="CustomerBuyGoodsOnline", PartyB="5432109")
    assert daraja.final_query(checkout)["ResultCode"] == "0"


def test_paybill_with_foreign_party_b_fails_with_2028(daraja):
    checkout = daraja.pushed(PartyB="600000")
    result = daraja.final_query(checkout)
    assert result["ResultCode"] == "2028"
    assert result["ResultDesc"] == "The request is not permitted according to product assignment."
