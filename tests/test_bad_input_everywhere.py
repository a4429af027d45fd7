"""Hostile values in every URL, query string, form and JSON body of every page: never a 500."""

from __future__ import annotations

import base64
import json
import logging
import re
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from bs4 import BeautifulSoup
from flask import Flask, url_for
from flask.testing import FlaskClient
from werkzeug.routing import IntegerConverter, Rule

from app import ROOT
from app.extensions import db
from app.models import RawCallback, Till, User
from app.models.statement import StatementEntry, StatementUpload
from app.owner.views import NO_REPORT_THAT_DAY
from app.simulator.ids import daraja_timestamp
from app.simulator.scenarios import CATALOGUE
from app.simulator.server import create_simulator_app
from app.simulator.settings import (
    DEMO_CONSUMER_KEY,
    DEMO_CONSUMER_SECRET,
    SANDBOX_PASSKEY,
    SANDBOX_SHORTCODE,
)
from app.timeutil import EARLIEST_DAY, is_reportable_day, today_nairobi
from app.web_input import ID_MAX
from tests.helpers import login, success_callback

ROLES = ("anonymous", "cashier", "owner", "admin")


@dataclass(frozen=True)
class Bad:
    """One hostile value: `text` goes into every string slot, `path_int` into every <int:...>."""

    name: str
    text: str
    #: what replaces an <int:...> path variable (a number no id column holds, or odd digits)
    path_int: str
    #: what replaces a JSON number (an amount, a delay, a copy count)
    json_number: Any
    #: send the HTML pages' requests as htmx (half the values each way keeps the walk short)
    htmx: bool


BAD = [
    Bad("nul", "0708\x00374149", str(2**31), 2**31, htmx=False),
    # int() refuses more than 4300 digits (a ValueError, not the usual "not a number").
    Bad("long", "9" * 5000, "9" * 5000, 10**400, htmx=True),
    Bad("arabic-indic-digits", "٠٧٠٨٣٧٤١٤٩", "١٢", "١٠٣٢", htmx=False),
    Bad("fullwidth-digits", "０７０８３７４１４９", "１２", "１０３２", htmx=True),
    Bad("date-9999-12-31", "9999-12-31", str(2**63), 2**63, htmx=False),
    Bad("date-0001-01-01", "0001-01-01", "0", -1, htmx=True),
    Bad("nan", "NaN", str(ID_MAX), float("nan"), htmx=False),
]

# Every query-string parameter a view reads (request.args in app/).
QUERY_NAMES = (
    *("q", "date", "outcome", "seen", "width", "next", "phone", "showing", "grant_type"),
    *("from", "to", "range", "shop", "till", "cashier", "status", "flag", "after"),  # owner
    *("amount_min", "amount_max", "receipt", "reference", "actor", "action", "target"),
)
# Every form field a view reads: request.form in app/ and the WTForms fields in app/*/forms.py
# (the user edit forms are prefixed "u<id>-", added per user below).
FORM_NAMES = (
    *("phone", "amount", "reference", "idempotency_key"),  # the counter
    *("outcome", "receipt", "note"),  # resolving a payment, adding its receipt
    *("language", "next", "username", "password", "role", "active"),  # login, language, users
    *("name", "till_type", "shortcode", "till_number", "environment", "query_budget_per_s"),
    *("allow_ported_numbers", "consumer_key", "consumer_secret", "passkey"),  # the till
    *("action", "pin", "checkout_request_id"),  # the simulator's virtual phone
    *("code", "current_password", "new_password", "confirm", "owner", "admin"),  # sign-in
    *("shop_id", "cashier_ids", "till_id", "archive", "actor", "target", "from", "to", "shop"),
    "payment_id",  # linking orphan money to a sale
    "csrf_token",
)
# JSON keys the simulator's Daraja API and control API read (app/simulator/*.py).
SIMULATOR_TEXT_KEYS = (
    *("BusinessShortCode", "Password", "Timestamp", "TransactionType", "PartyA", "PartyB"),
    *("PhoneNumber", "CallBackURL", "AccountReference", "TransactionDesc", "CheckoutRequestID"),
    *("result_code", "callback", "result_desc", "conflict_code", "phone"),
)
SIMULATOR_NUMBER_KEYS = ("Amount", "delay_s", "copies")
CALLBACK = "callbacks.stk_callback"
VARIABLE = re.compile(r"<(?:[^<>]*:)?(\w+)>")  # "<int:payment_id>" → payment_id

# Walked last: each ends what the rest of the walk relies on (the session, the simulator's
# bearer token).
LAST = (
    "auth.logout",
    "simulator.control_reset",
    "simulator.control_expire_tokens",
    # These change the till every other request uses: walk them after the rest.
    "admin.rotate_till_token",
    "admin.archive_till",
)
IMPLIED_METHODS = {"HEAD", "OPTIONS"}  # answered by Flask from the GET view, or by Flask alone


def _is_json_endpoint(endpoint: str) -> bool:
    """The callback and the simulator's APIs read JSON; the virtual phone reads forms."""
    return endpoint == CALLBACK or (
        endpoint.startswith("simulator.") and not endpoint.startswith("simulator.phone")
    )


def _form(bad: Bad, user_id: str) -> dict[str, str]:
    form = dict.fromkeys(FORM_NAMES, bad.text)
    form.update({f"u{user_id}-{field}": bad.text for field in ("role", "active", "password")})
    return form


def _json(endpoint: str, bad: Bad) -> str:
    if endpoint == CALLBACK:
        body = success_callback(
            bad.text, amount=bad.json_number, receipt=bad.text, phone=bad.text, merchant_id=bad.text
        )
        body["Body"]["stkCallback"]["ResultDesc"] = bad.text
    else:
        body = dict.fromkeys(SIMULATOR_TEXT_KEYS, bad.text)
        body.update(dict.fromkeys(SIMULATOR_NUMBER_KEYS, bad.json_number))
        # A real scenario, so the control API goes on to read every other key.
        body["scenario"] = CATALOGUE[0].name
    # NaN and 10**400 are not strict JSON; a hostile client sends them anyway.
    return json.dumps(body, allow_nan=True)


def _urls(rule: Rule, bad: Bad, real: dict[str, str]) -> Iterator[str]:
    """The rule's URL with every variable bad, then (if it has any) with values that exist,
    so the forms and query strings behind an id are read too, not only answered 404."""
    converters = rule._converters  # the only record of each variable's converter
    variants = [
        {
            name: bad.path_int if isinstance(conv, IntegerConverter) else bad.text
            for name, conv in converters.items()
        }
    ]
    if converters:
        missing = set(converters) - set(real)
        assert not missing, f"{rule.rule}: give the `real` fixture a value for {missing}"
        variants.append({name: real[name] for name in converters})
    for values in variants:
        # Built by hand: url_for would pass each value through its converter, which refuses
        # (or, for an int, normalises) exactly the values this walk is about.
        yield VARIABLE.sub(lambda m, v=values: quote(v[m.group(1)], safe=""), rule.rule)


@dataclass
class Request:
    where: str
    endpoint: str
    url: str
    kwargs: dict[str, Any]


def requests_for(app: Flask, bad: Bad, real: dict[str, str], token: str) -> Iterator[Request]:
    """One request per (rule, method, URL), with every query parameter and every body field
    set to `bad`; for HTML pages, as htmx if `bad.htmx` (htmx gets fragments, not pages)."""
    rules = sorted(app.url_map.iter_rules(), key=lambda r: (r.endpoint in LAST, r.endpoint))
    for rule in rules:
        json_endpoint = _is_json_endpoint(rule.endpoint)
        for method in sorted(rule.methods - IMPLIED_METHODS):
            for url in _urls(rule, bad, real):
                htmx = bad.htmx and not json_endpoint
                headers = {"Authorization": f"Bearer {token}"}
                if htmx:
                    headers |= {"HX-Request": "true", "HX-Target": "payment-rows"}
                kwargs: dict[str, Any] = {
                    "method": method,
                    "query_string": dict.fromkeys(QUERY_NAMES, bad.text),
                    "headers": headers,
                }
                if method != "GET" and json_endpoint:
                    kwargs |= {
                        "data": _json(rule.endpoint, bad),
                        "content_type": "application/json",
                    }
                elif method != "GET":
                    kwargs["data"] = _form(bad, real["user_id"])
                where = f"{method} {url[:90]}{' (htmx)' if htmx else ''}"
                yield Request(where, rule.endpoint, url, kwargs)


def _describe(exc: BaseException) -> str:
    """The exception and the deepest line of PesaDesk's own code it went through."""
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if f.filename.startswith(str(ROOT / "app"))] or frames
    where = f"{Path(ours[-1].filename).relative_to(ROOT)}:{ours[-1].lineno}" if ours else "?"
    first_line = (str(exc).splitlines() or [""])[0]
    return f"{exc.__class__.__name__}: {first_line[:160]} at {where}"


def _logged_exception(records: list[logging.LogRecord]) -> str:
    for record in reversed(records):
        if record.exc_info and record.exc_info[1] is not None:
            return _describe(record.exc_info[1])
    return "(nothing logged)"


def _is_daraja_envelope(endpoint: str, response) -> bool:
    """The simulator answers some refusals with Daraja's own 500.001.1001 envelope on purpose
    (docs/daraja.md §4.2): a documented gateway answer, not a crash."""
    if not endpoint.startswith("simulator."):
        return False
    body = response.get_json(silent=True)
    return isinstance(body, dict) and str(body.get("errorCode", "")).startswith("500.001.")


def send(client: FlaskClient, request: Request, caplog) -> str | None:
    """Send one request; describe it if it was a server error (or raised), else None."""
    caplog.clear()
    try:
        response = client.open(request.url, **request.kwargs)
    except Exception as exc:  # noqa: BLE001 - TESTING propagates crashes; that is the finding
        return f"{request.where} raised {_describe(exc)}"
    try:
        if response.status_code < 500 or _is_daraja_envelope(request.endpoint, response):
            return None
        return f"{request.where} → {response.status_code} {_logged_exception(caplog.records)}"
    finally:
        response.close()  # a static file's answer holds the file open until closed


@pytest.fixture
def real(app, make_payment) -> dict[str, str]:
    """A value that exists for every path variable: ids, the till's callback token, a file
    (the simulator's routes get a CheckoutRequestID it never issued: it holds no rows)."""
    payment = make_payment(status="paid", amount=150, receipt_number="RCPTWALK01")
    till = db.session.execute(sa.select(Till)).scalar_one()
    raw = RawCallback(till_id=till.id, body=b"{}", outcome="invalid")
    db.session.add(raw)
    db.session.commit()
    cashier = db.session.execute(sa.select(User).where(User.username == "cashier")).scalar_one()
    upload = StatementUpload(
        till_id=till.id, sha256="0" * 64, filename="s.csv", uploaded_by_id=cashier.id,
        first_day=date(2026, 11, 20), last_day=date(2026, 11, 20), line_count=1, new_lines=1,
    )  # fmt: skip
    db.session.add(upload)
    db.session.flush()
    entry = StatementEntry(
        till_id=till.id, upload_id=upload.id, line=5, receipt="QKWALK0001",
        completed_at=payment.created_at, details="Pay Bill Online", status="Completed",
        paid_in_cents=15000, withdrawn_cents=0, reason_type="", other_party="", party_name="",
    )  # fmt: skip
    db.session.add(entry)
    db.session.commit()
    return {
        "entry_id": str(entry.id),
        "payment_id": str(payment.id),
        "raw_id": str(raw.id),
        "user_id": str(cashier.id),
        "till_id": str(till.id),
        "shop_id": str(till.shop_id),
        "token": till.callback_token,
        "filename": "app.css",
        "checkout_request_id": payment.checkout_request_id,
        "_unknown": "mpesa/unknown",
    }


def _simulator_token(client: FlaskClient) -> str:
    """A bearer token, so the simulator's API reads the body instead of refusing the caller."""
    basic = base64.b64encode(f"{DEMO_CONSUMER_KEY}:{DEMO_CONSUMER_SECRET}".encode()).decode()
    response = client.get(
        "/simulator/oauth/v1/generate?grant_type=client_credentials",
        headers={"Authorization": f"Basic {basic}"},
    )
    assert response.status_code == 200, response.data
    return response.get_json()["access_token"]


@pytest.mark.parametrize("bad", BAD, ids=[b.name for b in BAD])
@pytest.mark.parametrize("role", ROLES)
def test_no_500_anywhere(app, real, role: str, bad: Bad, caplog) -> None:
    caplog.set_level(logging.ERROR)
    client = app.test_client()
    if role != "anonymous":
        login(client, role)
    token = _simulator_token(client)
    failures = [f for r in requests_for(app, bad, real, token) if (f := send(client, r, caplog))]
    assert failures == [], "\n".join(failures)


# ---- the generic fixes, one by one (app/web_input.py, app/timeutil.py) ---------------------
NUL_REQUESTS = [
    ("GET", "/admin/callbacks?q=ws_CO%00", None),
    ("GET", "/admin/callbacks?q%00=1", None),  # a key, not a value
    ("POST", "/login", {"username": "admin\x00", "password": "x"}),
    ("POST", "/admin/users", {"username": "new", "password": "pass\x00word-long"}),
]


def test_a_nul_byte_is_a_400_with_a_clear_message(admin_client) -> None:
    for method, url, form in NUL_REQUESTS:
        for htmx in (False, True):
            headers = {"HX-Request": "true"} if htmx else {}
            response = admin_client.open(url, method=method, data=form, headers=headers)
            html = response.get_data(as_text=True)
            assert response.status_code == 400, (url, htmx)
            assert "That request was not understood" in html
            assert "contains a NUL character" in html
            # htmx gets the fragment (templates/_error.html), a browser the whole page.
            assert ("<html" in html.lower()) is not htmx


def test_a_nul_byte_in_the_address_is_a_404(client, till) -> None:
    # A token with a NUL made PostgreSQL refuse the lookup: answered 503, "database down".
    response = client.post("/cb/stk/abc%00def", json={"Body": {}})
    assert response.status_code == 404
    assert "There is nothing at this address." in response.get_data(as_text=True)
    assert db.session.execute(sa.select(sa.func.count()).select_from(RawCallback)).scalar() == 0


def test_the_callback_still_stores_a_form_body_with_a_nul_verbatim(client, till) -> None:
    """The callback's raw body is evidence (README, "What the callback URL answers"): kept as
    sent and answered by the callback's own rules, not refused before it is stored."""
    body = b"Body=%00"
    response = client.post(
        f"/cb/stk/{till.callback_token}",
        data=body,
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 400
    raw = db.session.execute(sa.select(RawCallback)).scalar_one()
    assert raw.body == body and raw.outcome == "invalid"


def test_an_id_no_row_can_have_is_a_404(owner_client, make_payment) -> None:
    payment = make_payment(status="paid", receipt_number="RCPTDIGIT1")
    assert owner_client.get(f"/owner/payments/{payment.id}").status_code == 200
    # Flask's own converter read "١" as 1 (it matches \d) and took any size of number.
    other_digits = [
        "".join(chr(ord(zero) + int(d)) for d in str(payment.id)) for zero in ("٠", "０")
    ]
    for payment_id in [str(2**31), str(2**63), "9" * 5000, "0", "00", str(ID_MAX), *other_digits]:
        response = owner_client.get(f"/owner/payments/{quote(payment_id)}")
        assert response.status_code == 404, payment_id
        assert "There is nothing at this address." in response.get_data(as_text=True)


def test_urls_are_still_built_and_matched_with_the_bounded_converter(app) -> None:
    with app.test_request_context():
        assert url_for("owner.payment", payment_id=ID_MAX) == f"/owner/payments/{ID_MAX}"
    adapter = app.url_map.bind("localhost")
    assert adapter.match(f"/owner/payments/{ID_MAX}") == ("owner.payment", {"payment_id": ID_MAX})


def test_a_report_day_out_of_range_falls_back_to_today(owner_client) -> None:
    today = today_nairobi()
    for day in ("9999-12-31", "0001-01-01", "1999-12-31", "99991231"):
        response = owner_client.get(f"/owner/report?date={day}")
        assert response.status_code == 200, day
        soup = BeautifulSoup(response.data, "html.parser")
        assert soup.select_one("#date")["value"] == today.isoformat()
        assert soup.select_one(".form-error").text == NO_REPORT_THAT_DAY
    for day in (EARLIEST_DAY, today + timedelta(days=1)):  # the edges still show
        soup = BeautifulSoup(owner_client.get(f"/owner/report?date={day}").data, "html.parser")
        assert soup.select_one("#date")["value"] == day.isoformat()
        assert soup.select_one(".form-error") is None


def test_reportable_days() -> None:
    today = date(2026, 3, 2)
    assert is_reportable_day(EARLIEST_DAY, today)
    assert is_reportable_day(date(2026, 3, 3), today)
    assert not is_reportable_day(date(2026, 3, 4), today)
    assert not is_reportable_day(date(1999, 12, 31), today)
    assert not is_reportable_day(date.max, today) and not is_reportable_day(date.min, today)


# ---- the simulator reads only ASCII digits (app/simulator/validation.py, views.py) ---------
@pytest.fixture
def simulator() -> FlaskClient:
    """The standalone simulator: these rules need no database."""
    return create_simulator_app({"TESTING": True}).test_client()


def _push_body(**changes: Any) -> dict[str, Any]:
    timestamp = daraja_timestamp()
    secret = base64.b64encode(f"{SANDBOX_SHORTCODE}{SANDBOX_PASSKEY}{timestamp}".encode())
    body = {
        "BusinessShortCode": SANDBOX_SHORTCODE,
        "Password": secret.decode(),
        "Timestamp": timestamp,
        "TransactionType": "CustomerPayBillOnline",
        "Amount": 10,
        "PartyA": "254708374149",
        "PartyB": SANDBOX_SHORTCODE,
        "PhoneNumber": "254708374149",
        "CallBackURL": "http://127.0.0.1:9/cb",
        "AccountReference": "Sale",
        "TransactionDesc": "Payment",
    }
    return body | changes


def test_the_simulator_refuses_non_ascii_digits(simulator) -> None:
    token = _simulator_token(simulator)
    cases = [
        ({"BusinessShortCode": "١٧٤٣٧٩"}, "BusinessShortCode"),  # was 500 "Merchant does not exist"
        ({"Amount": "١٠"}, "Amount"),  # was accepted as KES 10
        ({"Amount": "１０"}, "Amount"),
        ({"PartyA": "2547٠٨٣٧٤١٤٩", "PhoneNumber": "2547٠٨٣٧٤١٤٩"}, "PartyA"),  # was accepted
    ]
    for changes, field in cases:
        response = simulator.post(
            "/simulator/mpesa/stkpush/v1/processrequest",
            json=_push_body(**changes),
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status_code == 400, changes
        assert response.get_json()["errorMessage"] == f"Bad Request - Invalid {field}"
    page = simulator.get("/simulator/phone", query_string={"phone": "07٠٨٣٧٤١٤٩"})
    assert "is not a Safaricom mobile number" in page.get_data(as_text=True)


def test_the_simulator_control_refuses_result_codes_it_cannot_send(simulator) -> None:
    # "9" * 5000 made int() raise (a 500); the others were codes no callback can carry.
    for code in ("9" * 5000, "١٠٣٢", "1" * 17, 10**16):
        response = simulator.post(
            "/simulator/_control/pushes/ws_CO_UNKNOWN/outcome", json={"result_code": code}
        )
        assert response.status_code == 400, code
        assert "result_code must be" in response.get_json()["error"]
