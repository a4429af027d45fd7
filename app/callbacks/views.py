"""The callback URL Safaricom POSTs STK results to: store the raw body, apply, acknowledge."""

from __future__ import annotations

import logging

from flask import Blueprint, current_app, jsonify, request
from sqlalchemy.exc import SQLAlchemyError

from app import shops
from app.callbacks import guard, inbox
from app.extensions import db
from app.models import CallbackOutcome, RawCallback

bp = Blueprint("callbacks", __name__)
log = logging.getLogger(__name__)

ACCEPTED = {"ResultCode": 0, "ResultDesc": "Accepted"}
# Headers worth keeping as evidence (proxies may add the real client address).
KEPT_HEADERS = ("Content-Type", "Content-Length", "User-Agent", "X-Forwarded-For", "X-Real-IP")


def _refusal(token: str) -> tuple[str, int] | None:
    """(why, HTTP status) when this POST is not let in: an address outside the allowlist
    (PESADESK_CALLBACK_ALLOWED_IPS), or too many posts on one token."""
    if not guard.address_allowed(request.remote_addr):
        return "address not allowed", 403
    if not guard.within_rate(token):
        return "too many callbacks", 429
    return None


@bp.post("/cb/stk/<token>")
def stk_callback(token: str):
    """Callbacks are unsigned: the secret token in the URL is the only proof of origin.

    Contract: 403 for an unknown token, or a rotated one past its grace period (nothing
    stored); 403 from an address outside the allowlist and 429 over the rate (nothing stored,
    counted on the till); 413 over the size limit; 503 if the
    body cannot be stored (so Safaricom's side sees a failure, never a false 200); otherwise
    the body is stored first, then applied; 400 if it is not a valid STK callback (or a value
    does not fit our columns); 503 if it was stored but could not be applied (the inbox sweep
    applies it once the database is back); else 200. Never a 500.
    """
    limit = current_app.config["CALLBACK_MAX_BYTES"]
    if request.content_length is not None and request.content_length > limit:
        return jsonify(ResultCode=1, ResultDesc="Rejected: body too large"), 413
    try:
        till_id = shops.till_for_callback_token(token)
    except SQLAlchemyError:
        log.exception("database unavailable while receiving a callback")
        return jsonify(ResultCode=1, ResultDesc="Temporarily unavailable"), 503
    if till_id is None:
        log.warning("callback with unknown token from %s", request.remote_addr)
        return jsonify(ResultCode=1, ResultDesc="Rejected"), 403
    refusal = _refusal(token)
    if refusal is not None:
        why, status = refusal
        log.warning("callback refused for till %s from %s: %s", till_id, request.remote_addr, why)
        try:
            shops.count_refusal(till_id, f"{why} ({request.remote_addr})")
        except SQLAlchemyError:
            db.session.rollback()
        return jsonify(ResultCode=1, ResultDesc=f"Rejected: {why}"), status
    body = request.get_data(cache=False)
    if len(body) > limit:
        return jsonify(ResultCode=1, ResultDesc="Rejected: body too large"), 413
    try:
        raw = RawCallback(
            till_id=till_id,
            remote_addr=request.remote_addr,
            headers={k: v for k, v in request.headers.items() if k in KEPT_HEADERS},
            body=body,
        )
        db.session.add(raw)
        db.session.commit()
        raw_id = raw.id
    except SQLAlchemyError:
        db.session.rollback()
        log.exception("could not store a callback")
        return jsonify(ResultCode=1, ResultDesc="Temporarily unavailable"), 503
    try:
        outcome = inbox.process(raw)
    except SQLAlchemyError:
        db.session.rollback()
        log.exception("callback %s stored but not applied; the inbox sweep will retry", raw_id)
        return jsonify(ResultCode=1, ResultDesc="Stored; not processed yet"), 503
    if outcome == CallbackOutcome.INVALID:
        return jsonify(ResultCode=1, ResultDesc="Rejected: not an STK callback"), 400
    if outcome == CallbackOutcome.ERROR:
        return jsonify(ResultCode=1, ResultDesc="Stored; not processed"), 503
    # Orphans, candidates, duplicates and conflicts are stored for a human or for the query
    # that confirms them; Safaricom needs nothing more.
    return jsonify(ACCEPTED)
