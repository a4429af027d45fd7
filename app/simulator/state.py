"""In-memory simulator state (tokens, pushes, phones, timers) and background callback delivery."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import requests
from flask import Flask

from app.simulator import ids
from app.simulator.scenarios import (
    CANCELLED_CODE,
    IGNORED_CODE,
    SAME_AMOUNT_SCENARIO,
    SUCCESS,
    WRONG_PIN_CODE,
    ResultCode,
    Scenario,
    result_desc,
)

log = logging.getLogger(__name__)

EXTENSION_KEY = "pesadesk_simulator"
CALLBACK_TIMEOUT_S = 10.0
# Enough history for a long demo; oldest completed pushes are forgotten beyond this.
MAX_PUSHES = 2000

# How a push's callbacks go out once decided ("late" and "delayed" scenarios become "send"
# with a delay; see Timing).
DeliveryMode = Literal["send", "drop", "duplicate", "conflict", "conflict-first"]
DELIVERY_MODES: tuple[DeliveryMode, ...] = (
    "send",
    "drop",
    "duplicate",
    "conflict",
    "conflict-first",
)
PhoneAction = Literal["pay", "cancel"]


class SubscriberLockedError(Exception):
    """A prompt is still live for this phone (Daraja's 'Unable to lock subscriber')."""


class ControlError(Exception):
    """Control-API misuse: unknown checkout (404) or wrong state (409)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Timing:
    """Every delay and window a push needs, read from SIMULATOR_* settings per request."""

    callback_delay: float = 4.0
    late_delay: float = 30.0
    delayed_delay: float = 30.0
    duplicates: int = 2
    gap: float = 1.0
    lock_window: float = 60.0  # 0 = no subscriber lock
    same_amount_window: float = 120.0  # 0 = no ResultCode 17 rule
    prompt_timeout: float = 60.0
    presence: float = 10.0  # 0 = the virtual phone never holds a push
    response_delay: float = 0.0  # slow/held push answers: the prompt starts after it


@dataclass
class Push:
    """One STK push as the simulator's M-Pesa side sees it."""

    checkout_request_id: str
    merchant_request_id: str
    business_short_code: str
    transaction_type: str
    party_b: str
    phone: str
    amount: int
    account_reference: str
    transaction_desc: str
    callback_url: str
    scenario: Scenario
    created_at: datetime
    created_mono: float
    deadline: float  # time.monotonic() at which the prompt stops being live
    due_code: ResultCode  # the outcome the deadline brings
    awaiting_human: bool = False
    state: str = "pending"
    result_code: ResultCode | None = None
    result_desc: str | None = None
    answered_by: str | None = None  # scenario, phone-pin, phone-wrong-pin, ... control
    receipt: str | None = None
    transaction_date: int | None = None
    callback_mode: DeliveryMode = "send"
    callback_delay_s: float = 0.0
    copies: int = 1
    gap_s: float = 0.0
    conflict_code: ResultCode | None = None
    callback_attempts: list[dict[str, Any]] = field(default_factory=list)
    # Set once every callback of the push has been attempted (the after-callback response
    # waits on it).
    delivered: threading.Event = field(default_factory=threading.Event, repr=False)

    def callback_payload(self, code: ResultCode | None = None) -> dict[str, Any]:
        """Body.stkCallback as Daraja shapes it (docs/daraja.md §6), for code or the result."""
        code = self.result_code if code is None else code
        callback: dict[str, Any] = {
            "MerchantRequestID": self.merchant_request_id,
            "CheckoutRequestID": self.checkout_request_id,
            "ResultCode": code,  # a NUMBER here, a string in the query
            "ResultDesc": self.result_desc if code == self.result_code else result_desc(code),
        }
        if code == SUCCESS:
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

    def delivery_plan(self) -> list[ResultCode]:
        """The ResultCode of each callback to POST, in order."""
        assert self.result_code is not None
        if self.callback_mode == "drop":
            return []
        if self.callback_mode == "duplicate":
            return [self.result_code] * max(self.copies, 1)
        if self.callback_mode == "conflict":
            return [self.result_code, self.conflict_code]  # type: ignore[list-item]
        if self.callback_mode == "conflict-first":
            return [self.conflict_code, self.result_code]  # type: ignore[list-item]
        return [self.result_code]

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
            "awaiting": "human" if self.awaiting_human else "scenario",
            "state": self.state,
            "result_code": self.result_code,
            "result_desc": self.result_desc,
            "answered_by": self.answered_by,
            "mpesa_receipt_number": self.receipt,
            "callback": self.callback_mode,
            "callbacks_sent": len(self.callback_attempts),
            "callback_attempts": list(self.callback_attempts),
        }


def post_callback(url: str, payload: dict[str, Any]) -> dict[str, Any]:
    """POST one callback; never raises, returns an attempt record for the control API."""
    attempt: dict[str, Any] = {
        "at": ids.now_eat().isoformat(),
        "result_code": payload["Body"]["stkCallback"]["ResultCode"],
        "status": None,
        "error": None,
    }
    try:
        response = requests.post(url, json=payload, timeout=CALLBACK_TIMEOUT_S)
        attempt["status"] = response.status_code
        response.close()
    except requests.RequestException as exc:
        # M-Pesa does not retry (docs/daraja.md §8); the merchant must fall back to the query.
        attempt["error"] = f"{type(exc).__name__}: {exc}"
        log.warning("simulator callback to %s failed: %s", url, exc)
    return attempt


class SimulatorState:
    """All mutable simulator state behind one lock; one instance per Flask app."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._tokens: dict[str, tuple[float, str]] = {}  # token -> (monotonic expiry, key)
        self._pushes: dict[str, Push] = {}  # insertion-ordered: oldest first
        self._pending: set[str] = set()
        self._merchant_ids: set[str] = set()
        self._receipts: set[str] = set()
        self._timers: set[threading.Timer] = set()
        self._phones_seen: dict[str, float] = {}  # phone -> monotonic time of the last poll
        self._armed: list[tuple[str | None, Scenario]] = []  # control API: next push gets…
        self._spike_last: dict[str, float] = {}  # spike-arrest bucket -> last allowed call
        self._tokens_issued = 0  # since start; reset() keeps it, as it keeps the tokens
        self._queries: dict[str, int] = {}  # CheckoutRequestID -> STK queries received
        # Bumped by reset(): timers armed before a reset find a different epoch and do nothing.
        self._epoch = 0
        # Set by reset() to wake every held push response and callback gap at once.
        self._wake = threading.Event()

    # ---- tokens -------------------------------------------------------------------------
    def issue_token(self, ttl_s: float, single: bool, consumer_key: str = "") -> str:
        token = ids.access_token()
        with self.lock:
            if single:
                # Daraja FAQ: each new token invalidates the one previously issued to the
                # same app; another app's token (another till) stays valid.
                for old in [t for t, (_, key) in self._tokens.items() if key == consumer_key]:
                    del self._tokens[old]
            self._tokens[token] = (time.monotonic() + ttl_s, consumer_key)
            self._tokens_issued += 1
        return token

    def token_key(self, token: str | None) -> str | None:
        """The consumer key a valid token was issued to, or None if the token is not valid."""
        if not token:
            return None
        with self.lock:
            entry = self._tokens.get(token)
            if entry is None:
                return None
            if entry[0] <= time.monotonic():
                del self._tokens[token]
                return None
            return entry[1]

    def token_valid(self, token: str | None) -> bool:
        return self.token_key(token) is not None

    def expire_tokens(self) -> int:
        with self.lock:
            count = len(self._tokens)
            self._tokens.clear()
            return count

    # ---- statistics (control API) -------------------------------------------------------
    def count_query(self, checkout_id: str) -> None:
        """An authenticated, well-formed STK query reached the simulator."""
        with self.lock:
            self._queries[checkout_id] = self._queries.get(checkout_id, 0) + 1

    def stats(self) -> dict[str, Any]:
        with self.lock:
            self._settle_due_locked()
            return {
                "tokens_issued": self._tokens_issued,
                "pushes": len(self._pushes),
                "pending": len(self._pending),
                "callbacks_sent": sum(len(p.callback_attempts) for p in self._pushes.values()),
                "queries": sum(self._queries.values()),
                "queries_by_checkout": dict(self._queries),
            }

    # ---- spike arrest -------------------------------------------------------------------
    def spike_allowed(self, bucket: str, rps: float) -> bool:
        """Apigee-style spike arrest: at most one call per 1/rps seconds in a bucket.

        Like Apigee, the rate is smoothed rather than counted per whole second, so two calls
        in the same instant already trip it; refused calls do not push the window forward.
        """
        if rps <= 0:
            return True
        now = time.monotonic()
        with self.lock:
            last = self._spike_last.get(bucket)
            if last is not None and now - last < 1.0 / rps:
                return False
            self._spike_last[bucket] = now
            return True

    # ---- control: scenario for the next push ---------------------------------------------
    def arm(
        self, scenario: Scenario, phone: str | None, *, front: bool = False
    ) -> list[dict[str, Any]]:
        """Queue a scenario for the next push to `phone` (None: any phone)."""
        with self.lock:
            self._armed.insert(0 if front else len(self._armed), (phone, scenario))
            return self.armed()

    def armed(self) -> list[dict[str, Any]]:
        with self.lock:
            return [{"phone": phone, "scenario": s.name} for phone, s in self._armed]

    def take_armed(self, phone: str) -> tuple[str | None, Scenario] | None:
        """Pop the first armed (target, scenario) meant for this phone (or for any phone)."""
        with self.lock:
            for index, (wanted, scenario) in enumerate(self._armed):
                if wanted is None or wanted == phone:
                    del self._armed[index]
                    return wanted, scenario
            return None

    # ---- virtual phone ------------------------------------------------------------------
    def touch_phone(self, phone: str) -> None:
        """The virtual phone page for this number is open (called on load and every poll)."""
        with self.lock:
            self._phones_seen[phone] = time.monotonic()

    def phone_pushes(self, phone: str) -> list[Push]:
        """This phone's pushes, newest first, with due outcomes decided."""
        with self.lock:
            self._settle_due_locked()
            return [p for p in reversed(self._pushes.values()) if p.phone == phone]

    def answer(self, checkout_id: str, action: PhoneAction, pin_ok: bool) -> Push:
        """The customer answers a prompt held for the virtual phone: PIN or Cancel."""
        with self.lock:
            self._settle_due_locked()
            push = self._pushes.get(checkout_id)
            if push is None:
                raise ControlError(404, "unknown checkout_request_id")
            if push.state != "pending" or not push.awaiting_human:
                raise ControlError(409, "this prompt is no longer waiting for an answer")
            if action == "cancel":
                self._complete_locked(push, CANCELLED_CODE, None, "phone-cancel")
            elif pin_ok:
                # A correct PIN gives the scenario's own outcome (insufficient funds, …).
                code = push.scenario.result_code
                self._complete_locked(push, SUCCESS if code is None else code, None, "phone-pin")
            else:
                self._complete_locked(push, WRONG_PIN_CODE, None, "phone-wrong-pin")
            return push

    # ---- pushes -------------------------------------------------------------------------
    def create_push(
        self,
        *,
        short_code: str,
        transaction_type: str,
        party_b: str,
        phone: str,
        amount: int,
        account_reference: str,
        transaction_desc: str,
        callback_url: str,
        scenario: Scenario,
        timing: Timing,
        forced: bool = False,
        decide_now: bool = False,
    ) -> Push:
        """Register a live prompt, or raise SubscriberLockedError if the phone has one.

        `forced` (a scenario armed through the control API) skips the ResultCode 17 rule;
        `decide_now` ends the prompt at once (the callback-before-response scenario).
        """
        with self.lock:
            self._settle_due_locked()
            now = time.monotonic()
            if timing.lock_window > 0 and any(
                self._pushes[cid].phone == phone
                and now - self._pushes[cid].created_mono < timing.lock_window
                for cid in self._pending
            ):
                raise SubscriberLockedError(phone)
            if (
                not forced
                and timing.same_amount_window > 0
                and any(
                    p.phone == phone
                    and p.amount == amount
                    and now - p.created_mono < timing.same_amount_window
                    for p in self._pushes.values()
                )
            ):
                scenario = SAME_AMOUNT_SCENARIO
            human = (
                not decide_now
                and timing.presence > 0
                and now - self._phones_seen.get(phone, float("-inf")) <= timing.presence
            )
            if human:
                live_s, due_code = timing.prompt_timeout, IGNORED_CODE
            elif scenario.callback == "delayed":
                live_s, due_code = timing.delayed_delay, scenario.result_code
            else:
                live_s, due_code = timing.callback_delay, scenario.result_code
            live_s += timing.response_delay
            moment = ids.now_eat()
            checkout_id = ids.checkout_request_id(moment, phone)
            while checkout_id in self._pushes:
                moment = ids.next_millisecond(moment)
                checkout_id = ids.checkout_request_id(moment, phone)
            merchant_id = ids.merchant_request_id()
            while merchant_id in self._merchant_ids:
                merchant_id = ids.merchant_request_id()
            # "late" and "delayed" only change timing; their single callback is a plain send.
            mode = "send" if scenario.callback in ("late", "delayed") else scenario.callback
            push = Push(
                checkout_request_id=checkout_id,
                merchant_request_id=merchant_id,
                business_short_code=short_code,
                transaction_type=transaction_type,
                party_b=party_b,
                phone=phone,
                amount=amount,
                account_reference=account_reference,
                transaction_desc=transaction_desc,
                callback_url=callback_url,
                scenario=scenario,
                created_at=moment,
                created_mono=now,
                deadline=now + live_s,
                due_code=SUCCESS if due_code is None else due_code,
                awaiting_human=human,
                callback_mode=mode,  # type: ignore[arg-type]
                callback_delay_s=timing.late_delay if scenario.callback == "late" else 0.0,
                copies=timing.duplicates,
                gap_s=timing.gap,
                conflict_code=scenario.conflict_code,
            )
            self._pushes[checkout_id] = push
            self._pending.add(checkout_id)
            self._merchant_ids.add(merchant_id)
            self._evict_locked()
            if decide_now:
                self._complete_locked(push, push.due_code, None, "scenario")
            else:
                self._arm_deadline(checkout_id, live_s)
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
        result_code: ResultCode,
        callback: DeliveryMode,
        delay_s: float,
        desc: str | None = None,
        copies: int | None = None,
        conflict_code: ResultCode | None = None,
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
            if copies is not None:
                push.copies = copies
            push.conflict_code = conflict_code
            self._complete_locked(push, result_code, desc, "control")
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
            self._schedule_delivery_locked(checkout_id, 0.0, [push.result_code], gap_s=0.0)
            return push.as_dict()

    def pause(self, seconds: float) -> bool:
        """Sleep up to `seconds` (held push answers); False if reset() cut it short."""
        with self.lock:
            wake = self._wake
        return not wake.wait(max(seconds, 0.0))

    def reset(self) -> None:
        """Forget every push and cancel every timer (tokens are kept; see expire_tokens)."""
        with self.lock:
            self._epoch += 1
            self._wake.set()
            self._wake = threading.Event()
            for timer in self._timers:
                timer.cancel()
            self._timers.clear()
            for push in self._pushes.values():
                push.delivered.set()  # a push answer waiting for its callback stops waiting
            self._pushes.clear()
            self._pending.clear()
            self._merchant_ids.clear()
            self._receipts.clear()
            self._phones_seen.clear()
            self._armed.clear()
            self._spike_last.clear()
            self._queries.clear()

    # ---- internals (call with self.lock held) --------------------------------------------
    def _settle_due_locked(self) -> None:
        # Outcomes are also decided lazily here so a late or starved timer thread can never
        # leave a query stuck on "being processed" after the deadline.
        now = time.monotonic()
        for checkout_id in [cid for cid in self._pending if self._pushes[cid].deadline <= now]:
            push = self._pushes[checkout_id]
            by = "phone-ignored" if push.awaiting_human else "scenario"
            self._complete_locked(push, push.due_code, None, by)

    def _complete_locked(
        self, push: Push, result_code: ResultCode, desc: str | None, answered_by: str
    ) -> None:
        moment = ids.now_eat()
        push.state = "completed"
        push.result_code = result_code
        push.result_desc = desc or result_desc(result_code)
        push.answered_by = answered_by
        if SUCCESS in (result_code, push.conflict_code):
            # A conflicting *success* callback needs a receipt as much as a true one.
            receipt = ids.receipt_number(moment)
            while receipt in self._receipts:
                receipt = ids.receipt_number(moment)
            self._receipts.add(receipt)
            push.receipt = receipt
            push.transaction_date = int(ids.daraja_timestamp(moment))
        self._pending.discard(push.checkout_request_id)
        plan = push.delivery_plan()
        if plan:
            self._schedule_delivery_locked(
                push.checkout_request_id, push.callback_delay_s, plan, push.gap_s
            )
        else:
            push.delivered.set()

    def _arm_deadline(self, checkout_id: str, delay_s: float) -> None:
        self._start_timer(delay_s, self._on_deadline, checkout_id, self._epoch)

    def _on_deadline(self, checkout_id: str, epoch: int) -> None:
        with self.lock:
            if epoch == self._epoch:
                self._settle_due_locked()

    def _schedule_delivery_locked(
        self, checkout_id: str, delay_s: float, codes: list[ResultCode], gap_s: float
    ) -> None:
        # Always from a background thread: the callback target is often this very process,
        # which must be free to answer it.
        self._start_timer(delay_s, self._deliver, checkout_id, self._epoch, codes, gap_s)

    def _start_timer(self, delay_s: float, func: Callable[..., None], *args: Any) -> None:
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

    def _deliver(self, checkout_id: str, epoch: int, codes: list[ResultCode], gap_s: float) -> None:
        with self.lock:
            push = self._pushes.get(checkout_id)
            if push is None:
                return
            if epoch != self._epoch:
                push.delivered.set()  # nobody may wait forever on a push forgotten by reset()
                return
            url, wake = push.callback_url, self._wake
            payloads = [push.callback_payload(code) for code in codes]
        try:
            for index, payload in enumerate(payloads):
                if index and gap_s > 0 and wake.wait(gap_s):
                    return  # reset() while waiting between two callbacks
                attempt = post_callback(url, payload)  # network I/O outside the lock
                with self.lock:
                    push.callback_attempts.append(attempt)
        finally:
            push.delivered.set()

    def _evict_locked(self) -> None:
        excess = len(self._pushes) - MAX_PUSHES
        if excess <= 0:
            return
        for checkout_id in [cid for cid in self._pushes if cid not in self._pending][:excess]:
            push = self._pushes.pop(checkout_id)
            self._queries.pop(checkout_id, None)
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
