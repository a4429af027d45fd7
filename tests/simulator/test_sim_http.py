"""Over real HTTP: the served simulator and the callbacks it POSTs to a receiving server."""

from __future__ import annotations

import re
import socket
import threading
from datetime import datetime, timedelta

import pytest
import requests
from flask import request

from app.simulator.ids import NAIROBI
from app.simulator.server import (
    check_bind_host,
    create_simulator_app,
    is_loopback,
    serve_in_thread,
)

pytestmark = pytest.mark.http


@pytest.fixture
def served(make_app):
    app = make_app(SIMULATOR_CALLBACK_DELAY=0.4, SIMULATOR_LATE_CALLBACK_DELAY=0.6)
    running = serve_in_thread(app)
    yield app, running
    running.shutdown()


@pytest.fixture
def live(served, receiver, daraja_cls):
    app, running = served

    def call(method, path, **kwargs):
        return requests.request(method, running.root_url + path, timeout=5, **kwargs)

    return daraja_cls(call, receiver.url, lambda r: r.json())


def _callback(receiver, wait_until, checkout, count=1):
    assert wait_until(lambda: len(receiver.for_checkout(checkout)) >= count), "no callback"
    return [b["Body"]["stkCallback"] for b in receiver.for_checkout(checkout)]


def test_running_server_urls(served):
    _, running = served
    assert running.root_url == f"http://127.0.0.1:{running.port}"
    assert running.base_url == running.root_url + "/simulator"
    assert requests.get(running.base_url + "/", timeout=5).json()["service"]


def test_success_callback_has_the_real_shape(live, receiver, wait_until):
    push = live.push(Amount=150).json()
    [cb] = _callback(receiver, wait_until, push["CheckoutRequestID"])
    assert receiver.path_of(push["CheckoutRequestID"]) == "/payments/stk/cb/s3cr3t"
    assert cb["MerchantRequestID"] == push["MerchantRequestID"]
    assert cb["ResultCode"] == 0
    assert isinstance(cb["ResultCode"], int)
    assert cb["ResultDesc"] == "The service request is processed successfully."
    items = cb["CallbackMetadata"]["Item"]
    assert [i["Name"] for i in items] == [
        "Amount",
        "MpesaReceiptNumber",
        "Balance",
        "TransactionDate",
        "PhoneNumber",
    ]
    values = {i["Name"]: i.get("Value") for i in items}
    assert values["Amount"] == 150
    assert re.fullmatch(r"[A-Z0-9]{10}", values["MpesaReceiptNumber"])
    assert "Value" not in items[2]
    assert isinstance(values["TransactionDate"], int)
    paid_at = datetime.strptime(str(values["TransactionDate"]), "%Y%m%d%H%M%S")
    assert abs(paid_at.replace(tzinfo=NAIROBI) - datetime.now(NAIROBI)) < timedelta(minutes=1)
    assert values["PhoneNumber"] == 254708374149
    row = live.control("GET", "pushes").json()[0]
    assert row["mpesa_receipt_number"] == values["MpesaReceiptNumber"]


def test_receipts_are_unique(live, receiver, wait_until):
    checkouts = [
        live.pushed(PhoneNumber=f"25472200000{n}", PartyA=f"25472200000{n}") for n in range(5)
    ]
    receipts = {
        _callback(receiver, wait_until, c)[0]["CallbackMetadata"]["Item"][1]["Value"]
        for c in checkouts
    }
    assert len(receipts) == 5


def test_failure_callback_has_no_metadata(live, receiver, wait_until):
    checkout = live.pushed(Amount=1032)
    [cb] = _callback(receiver, wait_until, checkout)
    assert set(cb) == {"MerchantRequestID", "CheckoutRequestID", "ResultCode", "ResultDesc"}
    assert (cb["ResultCode"], cb["ResultDesc"]) == (1032, "Request cancelled by user.")


@pytest.mark.parametrize(("amount", "code"), [(4040, "0"), (4032, "1032")])
def test_lost_callback_only_the_query_knows(live, receiver, wait_until, amount, code):
    checkout = live.pushed(Amount=amount)
    assert live.query(checkout).status_code == 500
    assert live.final_query(checkout)["ResultCode"] == code
    assert not wait_until(lambda: receiver.for_checkout(checkout), timeout=0.6)


def test_duplicate_callback_arrives_twice(live, receiver, wait_until):
    checkout = live.pushed(Amount=2020)
    first, second = _callback(receiver, wait_until, checkout, count=2)
    assert first == second
    assert first["ResultCode"] == 0


def test_late_callback_after_final_query(live, receiver, wait_until):
    checkout = live.pushed(Amount=3030)
    assert live.final_query(checkout)["ResultCode"] == "0"
    assert receiver.for_checkout(checkout) == []  # query is final, callback still to come
    [cb] = _callback(receiver, wait_until, checkout)
    assert cb["ResultCode"] == 0


def test_token_refresh_and_retry_over_http(live):
    old = live.token()
    assert live.control("POST", "tokens/expire").json()["expired"] == 1
    response = live.push(token=old)
    assert response.status_code == 404
    assert response.json()["errorCode"] == "404.001.03"
    assert live.push(token=live.token(fresh=True)).status_code == 200


def test_bad_credentials_empty_body_over_http(live):
    response = live.oauth(auth="Basic " + "eDp5")  # "x:y"
    assert response.status_code == 400
    assert response.content == b""


def test_callback_into_the_same_server_does_not_deadlock(make_app, daraja_cls, wait_until):
    # In demo mode the callback target is the very process serving the simulator.
    app = make_app(SIMULATOR_CALLBACK_DELAY=0.1)
    seen: list[dict] = []
    lock = threading.Lock()

    @app.post("/payments/stk/cb/self")
    def self_callback():
        with lock:
            seen.append(request.get_json())
        return {"ResultCode": 0, "ResultDesc": "Accepted"}

    with serve_in_thread(app) as running:

        def call(method, path, **kwargs):
            return requests.request(method, running.root_url + path, timeout=5, **kwargs)

        client = daraja_cls(call, running.root_url + "/payments/stk/cb/self", lambda r: r.json())
        checkout = client.pushed()
        assert wait_until(lambda: seen)
        assert seen[0]["Body"]["stkCallback"]["CheckoutRequestID"] == checkout


def test_unreachable_callback_is_logged_not_raised(make_app, daraja_for, wait_until, caplog):
    app = make_app(SIMULATOR_CALLBACK_DELAY=0.05)
    daraja = daraja_for(app)
    # A port that was just free: nothing listens, so the connection is refused at once.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead_url = f"http://127.0.0.1:{probe.getsockname()[1]}/cb"
    checkout = daraja.pushed(CallBackURL=dead_url)

    def attempts():
        rows = daraja.control("GET", "pushes").get_json()
        return rows[0]["callback_attempts"] if rows else []

    [attempt] = wait_until(attempts)
    assert attempt["status"] is None
    assert "ConnectionError" in attempt["error"]
    assert daraja.final_query(checkout)["ResultCode"] == "0"
    assert any(f"callback to {dead_url} failed" in m for m in caplog.messages)


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "example.com", "::"])  # noqa: S104
def test_refuses_non_loopback_bind(host):
    with pytest.raises(ValueError, match="refusing to bind"):
        serve_in_thread(create_simulator_app(), host=host)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.2", "[::1]"])
def test_loopback_hosts_are_allowed(host):
    assert is_loopback(host)
    check_bind_host(host, allow_remote=False)


def test_remote_bind_needs_explicit_opt_in():
    check_bind_host("0.0.0.0", allow_remote=True)  # noqa: S104 - no socket is opened here
    assert not is_loopback("10.0.0.1")


def test_concurrent_pushes_to_one_phone_lock_all_but_one(make_app, daraja_cls, receiver):
    # A long prompt so every racer sees the winner's prompt as live, however slow the host.
    running = serve_in_thread(make_app(SIMULATOR_CALLBACK_DELAY=30))

    def call(method, path, **kwargs):
        return requests.request(method, running.root_url + path, timeout=5, **kwargs)

    live = daraja_cls(call, receiver.url, lambda r: r.json())
    token = live.token()
    barrier = threading.Barrier(8)
    statuses: list[int] = []
    lock = threading.Lock()

    def fire() -> None:
        barrier.wait()
        response = live.push(token=token)
        with lock:
            statuses.append(response.status_code)

    threads = [threading.Thread(target=fire) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    try:
        assert sorted(statuses) == [200] + [500] * 7
        assert len(live.control("GET", "pushes").json()) == 1
    finally:
        running.shutdown()
