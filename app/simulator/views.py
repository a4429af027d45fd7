"""The simulator blueprint: Daraja-compatible OAuth, STK push, STK query and a control API."""

from __future__ import annotations

import base64
import hmac
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request
from flask.blueprints import BlueprintSetupState

from app.simulator import ids
from app.simulator.scenarios import (
    CALLBACK_MODES,
    PRODUCT_MISMATCH_SCENARIO,
    SCENARIOS,
    scenario_for_amount,
)
from app.simulator.settings import setting
from app.simulator.state import ControlError, SimulatorState, SubscriberLockedError, get_state
from app.simulator.validation import (
    BEING_PROCESSED,
    PAYBILL,
    SUBSCRIBER_LOCKED,
    ApiError,
    check_merchant,
    invalid,
    merchant_error,
    parse_push,
    parse_query,
)

bp = Blueprint("simulator", __name__)

# Routes accept every verb so a wrong one gets Daraja's 405.001 envelope, not Flask's HTML page.
ANY_METHOD = ["GET", "POST", "PUT", "PATCH", "DELETE"]
MAX_CONTROL_DELAY_S = 3600.0


@bp.record_once
def _init_state(setup: BlueprintSetupState) -> None:
    # Created at registration so concurrent first requests share one state object.
    get_state(setup.app)


def _state() -> SimulatorState:
    return get_state(current_app)


def _envelope(status: int, code: str, message: str) -> tuple[Response, int]:
    body = {"requestId": ids.request_id(), "errorCode": code, "errorMessage": message}
    return jsonify(body), status


@bp.errorhandler(ApiError)
def _api_error(error: ApiError) -> tuple[Response, int]:
    return _envelope(error.status, error.code, error.message)


@bp.errorhandler(ControlError)
def _control_error(error: ControlError) -> tuple[Response, int]:
    return jsonify({"error": error.message}), error.status


def _require_post() -> None:
    if request.method != "POST":
        raise ApiError(405, "405.001", "Method Not Allowed")


def _require_token() -> None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not _state().token_valid(token.strip()):
        raise ApiError(404, "404.001.03", "Invalid Access Token")


def _json_body() -> dict[str, Any]:
    if not request.is_json:
        # Portal FAQ: a missing Content-Type surfaces as this (misleading) field error.
        raise invalid("BusinessShortCode")
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, "400.002.05", "Invalid Request Payload")
    return body


def _passkeys() -> dict[str, str]:
    return {str(code): str(key) for code, key in dict(setting("SIMULATOR_PASSKEYS")).items()}


# ---- Daraja API ---------------------------------------------------------------------------
@bp.route("/oauth/v1/generate", methods=ANY_METHOD)
def oauth() -> Any:
    """GET ?grant_type=client_credentials with HTTP Basic key:secret."""
    if request.method != "GET":
        raise ApiError(405, "405.001", "Method Not Allowed")
    if request.args.get("grant_type") != "client_credentials":
        raise ApiError(400, "400.008.02", "Invalid grant type passed")
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        raise ApiError(400, "400.008.01", "Invalid authentication type passed")
    try:
        key, sep, secret = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
    except ValueError:  # bad base64 (binascii.Error) or non-UTF-8 bytes
        key, sep, secret = "", "", ""
    known = any(
        hmac.compare_digest(key.encode(), str(k).encode())
        & hmac.compare_digest(secret.encode(), str(s).encode())
        for k, s in setting("SIMULATOR_CREDENTIALS")
    )
    if not sep or not known:
        # Daraja answers bad key/secret with a bare 400 and an EMPTY body (daraja.md §2).
        return Response(b"", status=400)
    ttl = int(setting("SIMULATOR_TOKEN_TTL"))
    token = _state().issue_token(ttl, bool(setting("SIMULATOR_SINGLE_TOKEN")))
    # expires_in as a string, as most real responses carry it.
    return jsonify({"access_token": token, "expires_in": str(ttl)})


@bp.route("/mpesa/stkpush/v1/processrequest", methods=ANY_METHOD)
def stk_push() -> Any:
    """M-Pesa Express: validate, lock the subscriber, start the prompt clock."""
    _require_post()
    _require_token()
    push_request = parse_push(
        _json_body(),
        max_amount=int(setting("SIMULATOR_MAX_AMOUNT")),
        skew_s=float(setting("SIMULATOR_TIMESTAMP_SKEW")),
        strict=bool(setting("SIMULATOR_STRICT_KEYS")),
    )
    check_merchant(
        push_request.short_code, push_request.password, push_request.timestamp, _passkeys()
    )
    scenario = scenario_for_amount(push_request.amount)
    if push_request.transaction_type == PAYBILL and push_request.party_b != push_request.short_code:
        # Daraja accepts the push and fails it with 2028 in the callback (§3.3).
        scenario = PRODUCT_MISMATCH_SCENARIO
    try:
        push = _state().create_push(
            short_code=push_request.short_code,
            phone=push_request.phone,
            amount=push_request.amount,
            account_reference=push_request.account_reference,
            transaction_desc=push_request.transaction_desc,
            callback_url=push_request.callback_url,
            scenario=scenario,
            delay_s=float(setting("SIMULATOR_CALLBACK_DELAY")),
            late_delay_s=float(setting("SIMULATOR_LATE_CALLBACK_DELAY")),
        )
    except SubscriberLockedError:
        raise merchant_error(SUBSCRIBER_LOCKED) from None
    message = "Success. Request accepted for processing"
    return jsonify(
        {
            "MerchantRequestID": push.merchant_request_id,
            "CheckoutRequestID": push.checkout_request_id,
            "ResponseCode": "0",
            "ResponseDescription": message,
            "CustomerMessage": message,
        }
    )


@bp.route("/mpesa/stkpushquery/v1/query", methods=ANY_METHOD)
def stk_query() -> Any:
    """M-Pesa Express Query: 500 'being processed' while live, final result afterwards."""
    _require_post()
    _require_token()
    query = parse_query(_json_body(), skew_s=float(setting("SIMULATOR_TIMESTAMP_SKEW")))
    check_merchant(query.short_code, query.password, query.timestamp, _passkeys())
    push = _state().get_push(query.checkout_request_id)
    if push is None or push.business_short_code != query.short_code:
        raise invalid("CheckoutRequestID")
    if push.state == "pending":
        raise merchant_error(BEING_PROCESSED)
    return jsonify(
        {
            "ResponseCode": "0",
            "ResponseDescription": "The service request has been accepted successfully",
            "MerchantRequestID": push.merchant_request_id,
            "CheckoutRequestID": push.checkout_request_id,
            "ResultCode": str(push.result_code),  # a STRING here, unlike the callback
            "ResultDesc": push.result_desc,
        }
    )


# ---- control API (JSON, for tests and the demo) -------------------------------------------
def _control_body() -> dict[str, Any]:
    body = request.get_json(silent=True, force=True) if request.data else {}
    if not isinstance(body, dict):
        raise ControlError(400, "body must be a JSON object")
    return body


@bp.get("/_control/pushes")
def control_pushes() -> Any:
    return jsonify(_state().list_pushes())


@bp.get("/_control/scenarios")
def control_scenarios() -> Any:
    rows = [
        {
            "amount": s.amount,
            "name": s.name,
            "result_code": s.result_code,
            "callback": s.callback,
            "late": s.late,
            "summary": s.summary,
        }
        for s in SCENARIOS
    ]
    return jsonify(rows)


@bp.post("/_control/pushes/<checkout_request_id>/outcome")
def control_outcome(checkout_request_id: str) -> Any:
    body = _control_body()
    code = body.get("result_code", 0)
    if isinstance(code, str) and code.isdigit():
        code = int(code)
    if isinstance(code, bool) or not isinstance(code, int) or code < 0:
        raise ControlError(400, "result_code must be a non-negative integer")
    callback = body.get("callback", "send")
    if callback not in CALLBACK_MODES:
        raise ControlError(400, f"callback must be one of {', '.join(CALLBACK_MODES)}")
    delay = body.get("delay_s", 0)
    if isinstance(delay, bool) or not isinstance(delay, int | float):
        raise ControlError(400, "delay_s must be a number")
    if not 0 <= delay <= MAX_CONTROL_DELAY_S:
        raise ControlError(400, f"delay_s must be between 0 and {MAX_CONTROL_DELAY_S:g}")
    desc = body.get("result_desc")
    if desc is not None and not isinstance(desc, str):
        raise ControlError(400, "result_desc must be a string")
    return jsonify(
        _state().decide(
            checkout_request_id,
            result_code=code,
            callback=callback,
            delay_s=float(delay),
            desc=desc,
        )
    )


@bp.post("/_control/pushes/<checkout_request_id>/callback")
def control_resend(checkout_request_id: str) -> Any:
    return jsonify(_state().resend_callback(checkout_request_id))


@bp.post("/_control/reset")
def control_reset() -> Any:
    _state().reset()
    return jsonify({"reset": True})


@bp.post("/_control/tokens/expire")
def control_expire_tokens() -> Any:
    return jsonify({"expired": _state().expire_tokens()})


# ---- everything else ----------------------------------------------------------------------
@bp.get("/")
def index() -> Any:
    """Tiny self-description for humans who open the base URL."""
    return jsonify(
        {
            "service": "PesaDesk Daraja simulator",
            "oauth": "GET /oauth/v1/generate?grant_type=client_credentials",
            "stk_push": "POST /mpesa/stkpush/v1/processrequest",
            "stk_query": "POST /mpesa/stkpushquery/v1/query",
            "control": "/_control/pushes, /_control/scenarios",
        }
    )


@bp.route("/<path:_unknown>", methods=ANY_METHOD)
def not_found(_unknown: str) -> Any:
    raise ApiError(404, "404.001.01", "Resource not found")
