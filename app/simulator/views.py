"""The simulator blueprint: Daraja-compatible OAuth, STK push, STK query and a control API."""

from __future__ import annotations

import base64
import hmac
import logging
import re
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request
from flask.blueprints import BlueprintSetupState

from app.simulator import ids, phone
from app.simulator.scenarios import (
    BY_NAME,
    CATALOGUE,
    PRODUCT_MISMATCH_SCENARIO,
    RULE_SCENARIOS,
    SPIKE_ARREST,
    ResultCode,
    Scenario,
    choose_scenario,
)
from app.simulator.settings import SPIKE_ARREST_SCOPES, setting
from app.simulator.state import (
    CALLBACK_TIMEOUT_S,
    DELIVERY_MODES,
    ControlError,
    SimulatorState,
    SubscriberLockedError,
    Timing,
    get_state,
)
from app.simulator.validation import (
    BEING_PROCESSED,
    PAYBILL,
    SUBSCRIBER_LOCKED,
    ApiError,
    check_merchant,
    invalid,
    merchant_error,
    normalise_msisdn,
    parse_push,
    parse_query,
)

log = logging.getLogger(__name__)

# CSRF: the host app exempts this blueprint, since Daraja clients cannot send a token. That
# is acceptable only because the simulator is a demo tool bound to loopback and refused
# outright while any till is in production (the guard below); the virtual phone's forms
# share the exemption.
bp = Blueprint("simulator", __name__, template_folder="templates")

# Routes accept every verb so a wrong one gets Daraja's 405.001 envelope, not Flask's HTML page.
ANY_METHOD = ["GET", "POST", "PUT", "PATCH", "DELETE"]
MAX_CONTROL_DELAY_S = 3600.0
MAX_COPIES = 20
# Not a Daraja code on purpose: nobody should mistake this refusal for a gateway answer.
GUARD_ERROR_CODE = "SIMULATOR_DISABLED"
_TEXT_CODE_RE = re.compile(r"[A-Z][A-Z0-9_]{0,31}")
# A numeric ResultCode: ASCII digits (str.isdigit() also takes "١٠٣٢"), and no longer than
# the 16 characters the app stores (app/daraja/schemas.py); int() of 5000 digits even raises.
_NUMBER_CODE_RE = re.compile(r"[0-9]{1,16}")
NUMBER_CODE_LIMIT = 10**16


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


def guard_reason() -> str | None:
    """Why the simulator must not answer now (a till is in production), or None.

    SIMULATOR_GUARD is set by the host app; a guard that fails counts as a refusal, because
    a fake "paid" answered while we cannot tell could ship real goods.
    """
    guard = current_app.config.get("SIMULATOR_GUARD")
    if not callable(guard):
        return None
    try:
        reason = guard()
    except Exception:
        log.exception("simulator guard failed; refusing the request")
        return "The Daraja simulator is disabled: its production guard could not be checked."
    return str(reason) if reason else None


@bp.before_request
def _production_guard() -> Any:
    reason = guard_reason()
    if reason is None:
        return None
    if phone.is_phone_endpoint(request.endpoint):
        return phone.forbidden(reason)
    if (request.endpoint or "").startswith("simulator.control"):
        return jsonify({"error": reason}), 403
    return _envelope(403, GUARD_ERROR_CODE, reason)


def _require_post() -> None:
    if request.method != "POST":
        raise ApiError(405, "405.001", "Method Not Allowed")


def _require_token() -> str:
    """The consumer key behind a valid bearer token, else Daraja's 404.001.03."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    key = _state().token_key(token.strip()) if scheme.lower() == "bearer" else None
    if key is None:
        raise ApiError(404, "404.001.03", "Invalid Access Token")
    return key


def _spike_arrest(consumer_key: str) -> None:
    rps = float(setting("SIMULATOR_SPIKE_ARREST_RPS") or 0)
    scope = setting("SIMULATOR_SPIKE_ARREST_SCOPE")
    if scope not in SPIKE_ARREST_SCOPES:
        raise ValueError(f"SIMULATOR_SPIKE_ARREST_SCOPE must be one of {SPIKE_ARREST_SCOPES}")
    bucket = "*" if scope == "global" else f"key:{consumer_key}"
    if not _state().spike_allowed(bucket, rps):
        raise ApiError(SPIKE_ARREST.status, SPIKE_ARREST.code, SPIKE_ARREST.message)


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


def timing(response_delay: float = 0.0) -> Timing:
    """Current delays and windows from the SIMULATOR_* settings."""
    return Timing(
        callback_delay=float(setting("SIMULATOR_CALLBACK_DELAY")),
        late_delay=float(setting("SIMULATOR_LATE_CALLBACK_DELAY")),
        delayed_delay=float(setting("SIMULATOR_DELAYED_CALLBACK_DELAY")),
        duplicates=int(setting("SIMULATOR_DUPLICATE_CALLBACKS")),
        gap=float(setting("SIMULATOR_SECOND_CALLBACK_GAP")),
        lock_window=float(setting("SIMULATOR_LOCK_WINDOW")),
        same_amount_window=float(setting("SIMULATOR_SAME_AMOUNT_WINDOW")),
        prompt_timeout=float(setting("SIMULATOR_PROMPT_TIMEOUT")),
        presence=float(setting("SIMULATOR_PHONE_PRESENCE")),
        response_delay=response_delay,
    )


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
        # Daraja answers bad key/secret with a bare 400 and an EMPTY body (docs/daraja.md §2).
        return Response(b"", status=400)
    ttl = int(setting("SIMULATOR_TOKEN_TTL"))
    token = _state().issue_token(ttl, bool(setting("SIMULATOR_SINGLE_TOKEN")), key)
    # expires_in as a string, as most real responses carry it.
    return jsonify({"access_token": token, "expires_in": str(ttl)})


@bp.route("/mpesa/stkpush/v1/processrequest", methods=ANY_METHOD)
def stk_push() -> Any:
    """M-Pesa Express: validate, pick the scenario, lock the subscriber, start the prompt."""
    _require_post()
    _spike_arrest(_require_token())
    push_request = parse_push(
        _json_body(),
        max_amount=int(setting("SIMULATOR_MAX_AMOUNT")),
        skew_s=float(setting("SIMULATOR_TIMESTAMP_SKEW")),
        strict=bool(setting("SIMULATOR_STRICT_KEYS")),
        require_https=bool(setting("SIMULATOR_REQUIRE_HTTPS_CALLBACK")),
    )
    check_merchant(
        push_request.short_code, push_request.password, push_request.timestamp, _passkeys()
    )
    state = _state()
    armed = state.take_armed(push_request.phone)
    if armed is not None:
        scenario = armed[1]
    elif (
        push_request.transaction_type == PAYBILL and push_request.party_b != push_request.short_code
    ):
        # Daraja accepts the push and fails it with 2028 in the callback (docs/daraja.md §3.3).
        scenario = PRODUCT_MISMATCH_SCENARIO
    else:
        scenario = choose_scenario(push_request.phone, push_request.amount)
    if scenario.refusal is not None:
        refusal = scenario.refusal
        raise ApiError(refusal.status, refusal.code, refusal.message)
    held = {
        "slow": float(setting("SIMULATOR_SLOW_RESPONSE_DELAY")),
        "timeout": float(setting("SIMULATOR_TIMEOUT_RESPONSE_DELAY")),
    }.get(scenario.response, 0.0)
    try:
        push = state.create_push(
            short_code=push_request.short_code,
            transaction_type=push_request.transaction_type,
            party_b=push_request.party_b,
            phone=push_request.phone,
            amount=push_request.amount,
            account_reference=push_request.account_reference,
            transaction_desc=push_request.transaction_desc,
            callback_url=push_request.callback_url,
            scenario=scenario,
            timing=timing(held),
            forced=armed is not None,
            decide_now=scenario.response == "after-callback",
        )
    except SubscriberLockedError:
        if armed is not None:
            state.arm(armed[1], armed[0], front=True)  # unused: keep it for the next push
        raise merchant_error(SUBSCRIBER_LOCKED) from None
    if scenario.response == "after-callback":
        # Answer only once the callback went out and was answered (or failed): the merchant
        # then holds a result for a CheckoutRequestID it has not seen yet.
        push.delivered.wait(CALLBACK_TIMEOUT_S * (max(push.copies, 2) + 1))
    elif held:
        state.pause(held)  # the prompt is already on its way; only the answer is late
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
    _spike_arrest(_require_token())
    query = parse_query(_json_body(), skew_s=float(setting("SIMULATOR_TIMESTAMP_SKEW")))
    check_merchant(query.short_code, query.password, query.timestamp, _passkeys())
    _state().count_query(query.checkout_request_id)
    push = _state().get_push(query.checkout_request_id)
    if push is None or push.business_short_code != query.short_code:
        raise invalid("CheckoutRequestID")
    if push.state == "pending":
        raise merchant_error(BEING_PROCESSED)
    checkout = push.checkout_request_id
    if push.scenario.query == "other-id":
        # A faulty gateway's answer about another checkout: same shape, last digit changed.
        checkout = checkout[:-1] + ("1" if checkout[-1] != "1" else "2")
    return jsonify(
        {
            "ResponseCode": "0",
            "ResponseDescription": "The service request has been accepted successfully",
            "MerchantRequestID": push.merchant_request_id,
            "CheckoutRequestID": checkout,
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


def _result_code(value: Any, name: str) -> ResultCode:
    """A ResultCode from JSON: a non-negative integer (or its digits) or a code like SFC_IC0003."""
    if isinstance(value, str) and _NUMBER_CODE_RE.fullmatch(value):
        value = int(value)
    if isinstance(value, str) and _TEXT_CODE_RE.fullmatch(value):
        return value
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < NUMBER_CODE_LIMIT:
        raise ControlError(400, f"{name} must be a non-negative integer or a code like SFC_IC0003")
    return value


def _scenario_row(s: Scenario, kind: str) -> dict[str, Any]:
    return {
        "name": s.name,
        "kind": kind,
        "amount": s.amount,
        "phone": s.phone,
        "result_code": s.result_code,
        "callback": s.callback,
        "response": s.response,
        "query": s.query,
        "conflict_code": s.conflict_code,
        "refusal": (
            None
            if s.refusal is None
            else {"status": s.refusal.status, "code": s.refusal.code, "message": s.refusal.message}
        ),
        "late": s.callback == "late",
        "summary": s.summary,
    }


@bp.get("/_control/pushes")
def control_pushes() -> Any:
    return jsonify(_state().list_pushes())


@bp.get("/_control/stats")
def control_stats() -> Any:
    return jsonify(_state().stats())


@bp.get("/_control/scenarios")
def control_scenarios() -> Any:
    rows = [_scenario_row(s, "default" if s is CATALOGUE[0] else "catalogue") for s in CATALOGUE]
    rows += [_scenario_row(s, "rule") for s in RULE_SCENARIOS]
    return jsonify(rows)


def _named_scenario(body: dict[str, Any]) -> Scenario | None:
    name = body.get("scenario")
    if name is None:
        return None
    scenario = BY_NAME.get(name) if isinstance(name, str) else None
    if scenario is None:
        raise ControlError(400, f"unknown scenario {name!r} (see GET _control/scenarios)")
    return scenario


@bp.post("/_control/pushes/<checkout_request_id>/outcome")
def control_outcome(checkout_request_id: str) -> Any:
    body = _control_body()
    scenario = _named_scenario(body)
    code: Any = 0
    callback: Any = "send"
    delay: Any = 0
    conflict: Any = None
    if scenario is not None:
        if scenario.result_code is None or scenario.response != "normal":
            raise ControlError(
                400,
                f"scenario {scenario.name!r} acts on the push answer; "
                "arm it for the next push with POST _control/next",
            )
        code, conflict = scenario.result_code, scenario.conflict_code
        callback = "send" if scenario.callback in ("late", "delayed") else scenario.callback
        if scenario.callback == "late":
            delay = float(setting("SIMULATOR_LATE_CALLBACK_DELAY"))
    code = _result_code(body.get("result_code", code), "result_code")
    callback = body.get("callback", callback)
    if callback not in DELIVERY_MODES:
        raise ControlError(400, f"callback must be one of {', '.join(DELIVERY_MODES)}")
    delay = body.get("delay_s", delay)
    if isinstance(delay, bool) or not isinstance(delay, int | float):
        raise ControlError(400, "delay_s must be a number")
    if not 0 <= delay <= MAX_CONTROL_DELAY_S:
        raise ControlError(400, f"delay_s must be between 0 and {MAX_CONTROL_DELAY_S:g}")
    desc = body.get("result_desc")
    if desc is not None and not isinstance(desc, str):
        raise ControlError(400, "result_desc must be a string")
    copies = body.get("copies")
    if copies is not None and (
        isinstance(copies, bool) or not isinstance(copies, int) or not 1 <= copies <= MAX_COPIES
    ):
        raise ControlError(400, f"copies must be an integer from 1 to {MAX_COPIES}")
    conflict = body.get("conflict_code", conflict)
    if callback.startswith("conflict"):
        if conflict is None:
            raise ControlError(400, "a conflict callback needs conflict_code")
        conflict = _result_code(conflict, "conflict_code")
        if conflict == code:
            raise ControlError(400, "conflict_code must differ from result_code")
    else:
        conflict = None
    return jsonify(
        _state().decide(
            checkout_request_id,
            result_code=code,
            callback=callback,
            delay_s=float(delay),
            desc=desc,
            copies=copies,
            conflict_code=conflict,
        )
    )


@bp.route("/_control/next", methods=["GET", "POST"])
def control_next() -> Any:
    """Arm a catalogue scenario for the next push (to one phone, or to any)."""
    state = _state()
    if request.method == "GET":
        return jsonify({"armed": state.armed()})
    body = _control_body()
    scenario = _named_scenario(body)
    if scenario is None:
        raise ControlError(400, "scenario is required (see GET _control/scenarios)")
    target = body.get("phone")
    if target is not None:
        target = normalise_msisdn(target) if isinstance(target, str) else None
        if target is None:
            raise ControlError(400, "phone must be a Safaricom number such as 254708374149")
    return jsonify({"armed": state.arm(scenario, target)})


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
            "control": "/_control/pushes, /_control/scenarios, /_control/next, /_control/stats",
            "virtual_phone": "/phone",
        }
    )


phone.register(bp)


@bp.route("/<path:_unknown>", methods=ANY_METHOD)
def not_found(_unknown: str) -> Any:
    raise ApiError(404, "404.001.01", "Resource not found")
