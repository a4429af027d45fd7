"""The virtual phone (demo mode): see the STK prompt for a number, enter the PIN or cancel."""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass
from typing import Any

from flask import (
    Blueprint,
    Response,
    current_app,
    redirect,
    render_template,
    request,
    url_for,
)
from markupsafe import escape

from app.simulator.scenarios import (
    CANCELLED_CODE,
    IGNORED_CODE,
    SUCCESS,
    WRONG_PIN_CODE,
)
from app.simulator.settings import DEFAULT_PIN, business_name, pin_for, setting
from app.simulator.state import ControlError, Push, get_state
from app.simulator.validation import BUY_GOODS, normalise_msisdn

# A finished prompt stays on the screen this long, like the confirmation SMS would.
RESULT_SHOWN_S = 600
POLL = "1s"


@dataclass(frozen=True)
class Screen:
    """What the phone shows now; `key` changes whenever the screen must be redrawn."""

    kind: str  # idle | prompt | auto | result
    key: str
    push: Push | None = None
    text: str = ""
    seconds_left: int = 0


def is_phone_endpoint(endpoint: str | None) -> bool:
    return (endpoint or "").startswith("simulator.phone")


def forbidden(reason: str) -> tuple[Response, int]:
    """The production guard's refusal, as a page (the API answers JSON)."""
    html = (
        "<!doctype html><meta charset='utf-8'><title>Simulator disabled</title>"
        f"<p>{escape(reason)}</p>"
    )
    return Response(html, mimetype="text/html"), 403


def _shop(push: Push) -> str:
    if push.transaction_type == BUY_GOODS:
        return business_name(push.party_b, push.business_short_code)
    return business_name(push.business_short_code)


def prompt_text(push: Push) -> str:
    """The STK prompt as the customer reads it."""
    account = "" if push.transaction_type == BUY_GOODS else f" account {push.account_reference}"
    return f"Pay KES {push.amount:,} to {_shop(push)}{account}. Enter M-PESA PIN"


def result_text(push: Push) -> str:
    """What the customer learns once the prompt is over (the SMS, or the phone's message)."""
    code = push.result_code
    if code == SUCCESS:
        return f"{push.receipt} Confirmed. KES {push.amount:,} paid to {_shop(push)}."
    if code == WRONG_PIN_CODE and push.answered_by == "phone-wrong-pin":
        return "Wrong M-PESA PIN. Nothing was paid."
    if code == CANCELLED_CODE and push.answered_by == "phone-cancel":
        return "You cancelled the request. Nothing was paid."
    if code == IGNORED_CODE and push.answered_by == "phone-ignored":
        return "The request timed out before you answered. Nothing was paid."
    return f"Payment failed: {push.result_desc} Nothing was paid."


def screen_for(phone: str) -> Screen:
    pushes = get_state(current_app).phone_pushes(phone)
    for push in pushes:
        if push.state == "pending" and push.awaiting_human:
            left = max(0, int(push.deadline - time.monotonic()))
            return Screen(
                "prompt", f"prompt:{push.checkout_request_id}", push, prompt_text(push), left
            )
    for push in pushes:
        if push.state == "pending":
            return Screen("auto", f"auto:{push.checkout_request_id}", push, prompt_text(push))
    if pushes and time.monotonic() - pushes[0].created_mono < RESULT_SHOWN_S:
        push = pushes[0]
        return Screen("result", f"result:{push.checkout_request_id}", push, result_text(push))
    return Screen("idle", "idle")


def _context(phone: str | None, notice: str | None = None) -> dict[str, Any]:
    screen = screen_for(phone) if phone else Screen("idle", "idle")
    return {
        "phone": phone,
        "screen": screen,
        "notice": notice,
        "poll": POLL,
        "default_pin": phone is not None and pin_for(phone) == DEFAULT_PIN,
        "demo_pin": DEFAULT_PIN,
        "presence_s": float(setting("SIMULATOR_PHONE_PRESENCE")),
        "prompt_timeout_s": float(setting("SIMULATOR_PROMPT_TIMEOUT")),
        # The standalone simulator may run without the app's static files: then no htmx,
        # and every action still works as a plain form.
        "has_static": "static" in current_app.view_functions,
    }


def _is_htmx() -> bool:
    return request.headers.get("HX-Request") == "true"


def phone_page() -> Any:
    """GET: choose a number; with ?phone= the page shows that phone and keeps it 'open'."""
    raw = request.args.get("phone", "").strip()
    number = normalise_msisdn(raw) if raw else None
    notice = None
    if raw and number is None:
        notice = f"“{raw}” is not a Safaricom mobile number (try 0708374149)."
    if number:
        get_state(current_app).touch_phone(number)
    return render_template("simulator/phone.html", raw=raw, **_context(number, notice))


def phone_screen() -> Any:
    """htmx poll: 204 while the screen is unchanged (keeps a half-typed PIN), else the partial."""
    number = normalise_msisdn(request.args.get("phone", ""))
    if number is None:
        return Response(status=400)
    if not _is_htmx():
        return redirect(url_for("simulator.phone", phone=number), code=303)
    get_state(current_app).touch_phone(number)
    context = _context(number)
    if request.args.get("showing") == context["screen"].key:
        return Response(status=204)
    return render_template("simulator/_screen.html", **context)


def phone_answer() -> Any:
    """POST PIN (action=pay) or Cancel (action=cancel) for the prompt on screen.

    No CSRF token: the blueprint is exempt (see views.py). Tolerable for a demo-only page on
    loopback that the production guard switches off; never reuse this pattern elsewhere.
    """
    number = normalise_msisdn(request.form.get("phone", ""))
    if number is None:
        return Response("unknown phone", status=400)
    state = get_state(current_app)
    state.touch_phone(number)
    action = request.form.get("action", "pay")
    if action not in ("pay", "cancel"):
        return Response("action must be pay or cancel", status=400)
    pin = request.form.get("pin", "")
    notice = None
    status = 200
    try:
        state.answer(
            request.form.get("checkout_request_id", ""),
            action,  # type: ignore[arg-type]
            hmac.compare_digest(pin.encode(), pin_for(number).encode()),
        )
    except ControlError as exc:
        notice, status = f"{exc.message}.", exc.status
    if _is_htmx():
        # htmx swaps 2xx only; a stale prompt still gets a fresh screen with the notice.
        return render_template("simulator/_screen.html", **_context(number, notice))
    if notice is None:
        return redirect(url_for("simulator.phone", phone=number), code=303)
    page = render_template("simulator/phone.html", raw=number, **_context(number, notice))
    return page, status


def register(bp: Blueprint) -> None:
    """Add the phone routes to the simulator blueprint (under its /simulator prefix)."""
    bp.add_url_rule("/phone", "phone", phone_page, methods=["GET"])
    bp.add_url_rule("/phone/screen", "phone_screen", phone_screen, methods=["GET"])
    bp.add_url_rule("/phone/answer", "phone_answer", phone_answer, methods=["POST"])
