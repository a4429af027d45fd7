"""In-memory simulator state (tokens, pushes, timers) and background callback delivery."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import requests
from flask import Flask

from app.simulator import ids
from app.simulator.scenarios import SUCCESS, CallbackMode, Scenario, result_desc

log = logging.getLogger(__name__)

EXTENSION_KEY = "pesadesk_simulator"
CALLBACK_TIMEOUT_S = 10.0
# Enough history for a long demo; oldest completed pushes are forgotten beyond this.
MAX_PUSHES = 2000


class SubscriberLockedError(Exception):
    """A prompt is still live for this phone (Daraja's 'Unable to lock subscriber')."""


class ControlError(Exception):
    """Control-API misuse: unknown checkout (404) or wrong state (409)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Push:
    """One STK push as the simulator's M-Pesa side sees it."""

    checkout_request_id: str
    merchant_request_id: str
    business_short_code: str
    phone: str
    amount: int
    account_reference: str
    transaction_desc: str
    callback_url: str
    scenario: Scenario
    created_at: datetime
    deadline: float  # time.monotonic() at which the prompt stops being live
    state: str = "pending"
    result_code: int | None = None
    result_desc: str | None = None
    receipt: str | None = None
    transaction_date: int | None = None
    callback_mode: CallbackMode = "send"
    callback_delay_s: float = 0.0
    callback_attempts: list[dict[str, Any]] = field(default_factory=list)

    def callback_payload(self) -> dict[str, Any]:
        """Body.stkCallback exactly as Daraja shapes it (daraja.md §6)."""
        callback: dict[str, Any] = {
            "MerchantRequestID": self.merchant_request_id,
            "CheckoutRequestID": self.checkout_request_id,
            "ResultCode": self.result_code,  # a NUMBER here, a string in the query
            "ResultDesc": self.result_desc,
        }
        if self.result_code == SUCCESS:
            callback["CallbackMetadata"] = {
                "Item": [
                    {"Name": "Amount", "Value": self.amount},
                    {"Name": "MpesaReceiptNumber", "Value": self.receipt},
                    {"Name": "Balance"},  # real callbacks carry no Value here
                    {"Name": "TransactionDate", "Value": self.transaction_date},
                    {"Name": "PhoneNumber", "Value": int(self.phone)},
                ]
            }
        return {"Body": {"stkCallback": callback}}

    def as_dict(self) -> dict[str, Any]:
        """Control-API view of the push."""
        return {
            "checkout_request_id": self.checkout_request_id,
            "merchant_request_id": self.merchant_request_id,
            "business_short_code": self.business_short_code,
            "phone": self.phone,
            "amount": self.amount,
            "account_reference": self.account_reference,
            "callback_url": self.callback_url,
            "created_at": self.created_at.isoformat(),
            "scenario": self.scenario.name,
            "state": self.state,
            "result_code": self.result_code,
            "result_desc": self.result_desc,
            "mpesa_receipt_number": self.receipt,
            "callback": self.callback_mode,
            "callbacks_sent": len(self.callback_attempts),
            "callback_attempts": list(self.callback_attempts),
        }


def post_callback(url: str, payload: dict[str, Any]) -> dict[str, Any]:
    """POST one callback; never raises, returns an attempt record for the control API."""
    attempt: dict[str, Any] = {"at": ids.now_eat().isoformat(), "status": None, "error": None}
    try:
        response = requests.post(url, json=payload, timeout=CALLBACK_TIMEOUT_S)
        attempt["status"] = response.status_code
        response.close()
    except requests.RequestException as exc:
        # M-Pesa does not retry (daraja.md §8); the merchant must fall back to the query.
        attempt["error"] = f"{type(exc).__name__}: {exc}"
        log.warning("simulator callback to %s failed: %s", url, exc)
    return attempt


class SimulatorState:
    """All mutable simulator state behind one lock; one instance per Flask app."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._tokens: dict[str, float] = {}  # token -> monotonic expiry
        self._pushes: dict[str, Push] = {}  # insertion-ordered: oldest first
        self._pending: set[str] = set()
        self._merchant_ids: set[str] = set()
        self._receipts: set[str] = set()
        self._timers: set[threading.Timer] = set()
        # Bumped by reset(): timers armed before a reset find a different epoch and do nothing.
        self._epoch = 0

    # ---- tokens -------------------------------------------------------------------------
    def issue_token(self, ttl_s: float, single: bool) -> str:
        token = ids.access_token()
        with self.lock:
            if single:
                # Daraja FAQ: each new token invalidates the previously issued one.
                self._tokens.clear()
            self._tokens[token] = time.monotonic() + ttl_s
        return token

    def token_valid(self, token: str | None) -> bool:
        if not token:
            return False
        with self.lock:
            expiry = self._tokens.get(token)
            if expiry is None:
                return False
            if expiry <= time.monotonic():
                del self._tokens[token]
                return False
            return True

    def expire_tokens(self) -> int:
        with self.lock:
            count = len(self._tokens)
            self._tokens.clear()
            return count

    # ---- pushes -------------------------------------------------------------------------
    def create_push(
        self,
        *,
        short_code: str,
        phone: str,
        amount: int,
        account_reference: str,
        transaction_desc: str,
        callback_url: str,
        scenario: Scenario,
        delay_s: float,
        late_delay_s: float,
    ) -> Push:
        """Register a live prompt, or raise SubscriberLockedError if the phone has one."""
        with self.lock:
            self._settle_due_locked()
            if any(self._pushes[cid].phone == phone for cid in self._pending):
                raise SubscriberLockedError(phone)
            moment = ids.now_eat()
            checkout_id = ids.checkout_request_id(moment, phone)
            while checkout_id in self._pushes:
                moment = ids.next_millisecond(moment)
                checkout_id = ids.checkout_request_id(moment, phone)
            merchant_id = ids.merchant_request_id()
            while merchant_id in self._merchant_ids:
                merchant_id = ids.merchant_request_id()
            push = Push(
                checkout_request_id=checkout_id,
                merchant_request_id=merchant_id,
                business_short_code=short_code,
                phone=phone,
                amount=amount,
                account_reference=account_reference,
                transaction_desc=transaction_desc,
                callback_url=callback_url,
                scenario=scenario,
                created_at=moment,
                deadline=time.monotonic() + delay_s,
                callback_mode=scenario.callback,
                callback_delay_s=late_delay_s if scenario.late else 0.0,
            )
            self._pushes[checkout_id] = push
            self._pending.add(checkout_id)
            self._merchant_ids.add(merchant_id)
            self._evict_locked()
            self._arm_deadline(checkout_id, delay_s)
            return push

    def get_push(self, checkout_id: str) -> Push | None:
        """The push, with its outcome decided first if its deadline has passed."""
        with self.lock:
            self._settle_due_locked()
            return self._pushes.get(checkout_id)

    def list_pushes(self) -> list[dict[str, Any]]:
        with self.lock:
            self._settle_due_locked()
            return [push.as_dict() for push in self._pushes.values()]

    def decide(
        self,
        checkout_id: str,
        *,
        result_code: int,
        callback: CallbackMode,
        delay_s: float,
        desc: str | None = None,
    ) -> dict[str, Any]:
        """Control API: end a live prompt now with a chosen outcome."""
        with self.lock:
            push = self._pushes.get(checkout_id)
            if push is None:
                raise ControlError(404, "unknown checkout_request_id")
            if push.state != "pending":
                raise ControlError(409, "push already completed")
            push.callback_mode = callback
            push.callback_delay_s = delay_s
            self._complete_locked(push, result_code, desc)
            return push.as_dict()

    def resend_callback(self, checkout_id: str) -> dict[str, Any]:
        """Control API: POST a completed push's callback once more, now."""
        with self.lock:
            self._settle_due_locked()
            push = self._pushes.get(checkout_id)
            if push is None:
                raise ControlError(404, "unknown checkout_request_id")
            if push.state != "completed":
                raise ControlError(409, "push still pending")
            self._schedule_delivery_locked(checkout_id, 0.0, copies=1)
            return push.as_dict()

    def reset(self) -> None:
        """Forget every push and cancel every timer (tokens are kept; see expire_tokens)."""
        with self.lock:
            self._epoch += 1
            for timer in self._timers:
                timer.cancel()
            self._timers.clear()
            self._pushes.clear()
            self._pending.clear()
            self._merchant_ids.clear()
            self._receipts.clear()

    # ---- internals (call with self.lock held) --------------------------------------------
    def _settle_due_locked(self) -> None:
        # Outcomes are also decided lazily here so a late or starved timer thread can never
        # leave a query stuck on "being processed" after the deadline.
        now = time.monotonic()
        for checkout_id in [cid for cid in self._pending if self._pushes[cid].deadline <= now]:
            push = self._pushes[checkout_id]
            self._complete_locked(push, push.scenario.result_code, None)

    def _complete_locked(self, push: Push, result_code: int, desc: str | None) -> None:
        moment = ids.now_eat()
        push.state = "completed"
        push.result_code = result_code
        push.result_desc = desc or result_desc(result_code)
        if result_code == SUCCESS:
            receipt = ids.receipt_number(moment)
            while receipt in self._receipts:
                receipt = ids.receipt_number(moment)
            self._receipts.add(receipt)
            push.receipt = receipt
            push.transaction_date = int(ids.daraja_timestamp(moment))
        self._pending.discard(push.checkout_request_id)
        if push.callback_mode != "drop":
            copies = 2 if push.callback_mode == "duplicate" else 1
            self._schedule_delivery_locked(push.checkout_request_id, push.callback_delay_s, copies)

    def _arm_deadline(self, checkout_id: str, delay_s: float) -> None:
        self._start_timer(delay_s, self._on_deadline, checkout_id, self._epoch)

    def _on_deadline(self, checkout_id: str, epoch: int) -> None:
        with self.lock:
            if epoch == self._epoch:
                self._settle_due_locked()

    def _schedule_delivery_locked(self, checkout_id: str, delay_s: float, copies: int) -> None:
        # Always from a background thread: the callback target is often this very process,
        # which must be free to answer it.
        self._start_timer(delay_s, self._deliver, checkout_id, self._epoch, copies)

    def _start_timer(self, delay_s: float, func: Any, *args: Any) -> None:
        timer: threading.Timer

        def run() -> None:
            try:
                func(*args)
            except Exception:
                log.exception("simulator timer failed")
            finally:
                with self.lock:
                    self._timers.discard(timer)

        timer = threading.Timer(max(delay_s, 0.0), run)
        timer.daemon = True
        self._timers.add(timer)
        timer.start()

    def _deliver(self, checkout_id: str, epoch: int, copies: int) -> None:
        with self.lock:
            push = self._pushes.get(checkout_id)
            if push is None or epoch != self._epoch:
                return
            url, payload = push.callback_url, push.callback_payload()
        for _ in range(copies):
            attempt = post_callback(url, payload)  # network I/O outside the lock
            with self.lock:
                push.callback_attempts.append(attempt)

    def _evict_locked(self) -> None:
        excess = len(self._pushes) - MAX_PUSHES
        if excess <= 0:
            return
        for checkout_id in [cid for cid in self._pushes if cid not in self._pending][:excess]:
            push = self._pushes.pop(checkout_id)
            self._merchant_ids.discard(push.merchant_request_id)
            if push.receipt:
                self._receipts.discard(push.receipt)


_create_lock = threading.Lock()


def get_state(app: Flask) -> SimulatorState:
    """The app's simulator state, created on first use (thread-safe)."""
    state = app.extensions.get(EXTENSION_KEY)
    if state is None:
        with _create_lock:
            state = app.extensions.setdefault(EXTENSION_KEY, SimulatorState())
    return state
