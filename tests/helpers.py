"""Helpers shared by tests: logging in, building callbacks, waiting with a deadline."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

PASSWORD = "correct-horse-42"


def login(client, username: str) -> None:
    response = client.post("/login", data={"username": username, "password": PASSWORD})
    assert response.status_code == 302, response.data[:300]


def success_callback(
    checkout_id: str,
    *,
    amount: Any = 150,
    receipt: str = "TST1ABC2DE",
    phone: Any = 254708374149,
    merchant_id: str = "29115-34620561-1",
) -> dict:
    return {
        "Body": {
            "stkCallback": {
                "MerchantRequestID": merchant_id,
                "CheckoutRequestID": checkout_id,
                "ResultCode": 0,
                "ResultDesc": "The service request is processed successfully.",
                "CallbackMetadata": {
                    "Item": [
                        {"Name": "Amount", "Value": amount},
                        {"Name": "MpesaReceiptNumber", "Value": receipt},
                        {"Name": "Balance"},
                        {"Name": "TransactionDate", "Value": 20261129101531},
                        {"Name": "PhoneNumber", "Value": phone},
                    ]
                },
            }
        }
    }


def failure_callback(
    checkout_id: str, code: int = 1032, desc: str = "Request cancelled by user."
) -> dict:
    return {
        "Body": {
            "stkCallback": {
                "MerchantRequestID": "29115-34620561-1",
                "CheckoutRequestID": checkout_id,
                "ResultCode": code,
                "ResultDesc": desc,
            }
        }
    }


def post_json(client, url: str, payload: Any):
    return client.post(url, data=json.dumps(payload), content_type="application/json")


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.1) -> Any:
    """Poll `predicate` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)
