"""The production guard: with a reason from SIMULATOR_GUARD, every simulator request gets 403."""

from __future__ import annotations

import pytest

from app.simulator.state import get_state

REASON = "Till 'Main <Branch>' is in production: the Daraja simulator is disabled."


@pytest.fixture
def switch():
    """A guard whose answer the test flips, like a till moved to production mid-demo."""
    state = {"reason": None, "calls": 0}

    def guard() -> str | None:
        state["calls"] += 1
        return state["reason"]

    state["guard"] = guard
    return state


def _forbidden_envelope(response) -> bool:
    body = response.get_json()
    return response.status_code == 403 and (body["errorCode"], body["errorMessage"]) == (
        "SIMULATOR_DISABLED",
        REASON,
    )


def test_guard_with_a_reason_refuses_api_control_and_phone(make_app, daraja_for):
    app = make_app(SIMULATOR_GUARD=lambda: REASON)
    daraja = daraja_for(app)
    client = app.test_client()

    assert _forbidden_envelope(daraja.oauth())
    assert _forbidden_envelope(daraja.push(token="anything"))
    assert _forbidden_envelope(daraja.query("ws_CO_x", token="anything"))
    assert _forbidden_envelope(client.get("/simulator/"))
    for method, path in [("GET", "pushes"), ("GET", "scenarios"), ("POST", "reset")]:
        response = daraja.control(method, path)
        assert (response.status_code, response.get_json()) == (403, {"error": REASON})
    page = client.get("/simulator/phone?phone=0708374149")
    assert page.status_code == 403
    assert page.mimetype == "text/html"
    assert "Main &lt;Branch&gt;" in page.get_data(as_text=True)  # escaped
    answer = client.post("/simulator/phone/answer", data={"phone": "0708374149"})
    assert answer.status_code == 403
    # Nothing happened: no token, no push, no open phone.
    state = get_state(app)
    assert state.expire_tokens() == 0
    assert state.list_pushes() == []
    assert state.phone_pushes("254708374149") == []


def test_guard_is_asked_on_every_request(make_app, daraja_for, switch):
    app = make_app(SIMULATOR_GUARD=switch["guard"], SIMULATOR_CALLBACK_DELAY=30)
    daraja = daraja_for(app)
    checkout = daraja.pushed()
    calls = switch["calls"]
    assert calls >= 2  # OAuth and push
    switch["reason"] = REASON
    assert _forbidden_envelope(daraja.query(checkout))
    decide = daraja.control("POST", f"pushes/{checkout}/outcome", {"result_code": 0})
    assert decide.status_code == 403
    assert get_state(app).get_push(checkout).state == "pending"  # the refused call did nothing
    switch["reason"] = None
    assert daraja.query(checkout).get_json()["errorMessage"] == "The transaction is being processed"
    assert switch["calls"] == calls + 3


def test_a_guard_that_fails_refuses(make_app, daraja_for):
    def broken() -> str | None:
        raise RuntimeError("database is down")

    daraja = daraja_for(make_app(SIMULATOR_GUARD=broken))
    response = daraja.oauth()
    assert response.status_code == 403
    assert "could not be checked" in response.get_json()["errorMessage"]


def test_no_guard_or_an_empty_reason_lets_requests_through(make_app, daraja_for):
    for guard in (None, lambda: None, lambda: ""):
        daraja = daraja_for(make_app(SIMULATOR_GUARD=guard))
        assert daraja.oauth().status_code == 200
