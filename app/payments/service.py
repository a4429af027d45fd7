"""The one owner of payment state: create a payment, push it, and apply every outcome as an event.

Every status change goes through `apply_event`, which looks the move up in
app.payments.states.TABLE, writes the new status and appends a PaymentEvent in the same
transaction. Two writers (a callback and the poller) cannot both win: the payment row
carries an optimistic version number, and each event has a unique idempotency key.

Unlike ordinary services these functions commit: the payment row must be durable *before*
the push leaves (so a crash leaves evidence), and each outcome must be durable before the
callback is acknowledged.
"""

from __future__ import annotations

import enum
import logging
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from app.crypto import SecretUnavailable
from app.daraja.codes import describe
from app.daraja.errors import DarajaError
from app.daraja.schemas import StkPushRequest
from app.extensions import db
from app.models import Payment, PaymentEvent, Till, User
from app.models.types import utcnow
from app.payments import guards, rules, tills
from app.payments.states import FINAL, Action, Event, Status, next_transition

log = logging.getLogger(__name__)


class Applied(enum.StrEnum):
    MOVED = "applied"
    DUPLICATE = "duplicate"
    CONFLICT = "conflict"


@dataclass(frozen=True)
class Outcome:
    """A fact learned about a payment, from whichever source."""

    event: Event
    source: str  # push, callback, query, expiry, manual
    result_code: str | None = None
    result_desc: str | None = None
    receipt_number: str | None = None
    transaction_date: str | None = None
    merchant_request_id: str | None = None
    checkout_request_id: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    note: str | None = None
    data: dict[str, Any] | None = None
    raw_callback_id: int | None = None

    @classmethod
    def final(cls, source: str, result_code: str, **fields: Any) -> Outcome:
        """A final ResultCode from a callback or a query: "0" is success, anything else failure."""
        event = Event.SUCCESS if result_code == "0" else Event.FAILURE
        return cls(event, source, result_code=result_code, **fields)

    @property
    def idem_key(self) -> str:
        return f"{self.event}:{self.result_code or ''}:{self.receipt_number or ''}"


def initiate_payment(
    till: Till,
    cashier: User | None,
    *,
    phone: str,
    amount: str | int,
    reference: str | None,
    idempotency_key: str,
    resend_of: Payment | None = None,
    now: datetime | None = None,
) -> tuple[Payment, bool]:
    """Validate, save the row as `initiating`, then send the STK push.

    Returns (payment, created). A repeated idempotency key returns the first payment and
    sends nothing. Raises rules.InputError (guards.TryLater when M-Pesa would refuse it
    now) before anything is saved or sent. `resend_of` links a new attempt to its sale.
    """
    msisdn = rules.normalise_phone(phone)
    amount_kes = rules.parse_amount(amount, current_app.config["MAX_AMOUNT"])
    account_reference = rules.clean_reference(reference, default="Sale")
    idempotency_key = _scoped_key(cashier, idempotency_key)
    existing = _by_idempotency_key(idempotency_key)
    if existing is not None:
        return existing, False
    guards.check_before_push(msisdn, amount_kes, now or utcnow())

    payment = Payment(
        till_id=till.id,
        cashier_id=cashier.id if cashier else None,
        idempotency_key=idempotency_key,
        sale_ref=resend_of.sale_ref if resend_of else uuid.uuid4().hex,
        resend_of_id=resend_of.id if resend_of else None,
        phone=msisdn,
        amount_kes=amount_kes,
        account_reference=account_reference,
        transaction_desc=rules.clean_description(None),
        status=Status.INITIATING,
        # Stamped before sending, so the guards see a push in flight or timed out too.
        pushed_at=now or utcnow(),
    )
    try:
        db.session.add(payment)
        db.session.flush()  # the unique idempotency key can fail here, not only at commit
        db.session.add(
            PaymentEvent(
                payment_id=payment.id,
                source="push",
                kind="created",
                from_status=None,
                to_status=Status.INITIATING,
                idem_key="created",
            )
        )
        # Durable before the push: if we crash mid-push, the row shows an attempt was made.
        db.session.commit()
    except IntegrityError:
        # Another request with the same key won the race: that one sends the push.
        db.session.rollback()
        existing = _by_idempotency_key(idempotency_key)
        if existing is None:
            raise
        return existing, False

    _push(payment.id)
    return db.session.get(Payment, payment.id), True


RESENDABLE = frozenset({Status.FAILED, Status.REJECTED})


class CannotResend(rules.InputError):
    """This attempt must not be sent again (its sale is paid, or money may have moved)."""


def resend_payment(
    original: Payment, cashier: User | None, *, idempotency_key: str, now: datetime | None = None
) -> tuple[Payment, bool]:
    """A new attempt for the same sale, after a failed or refused one.

    Never for `unknown` or `unconfirmed` attempts: their money may have moved, and a second
    prompt could charge the customer twice.
    """
    existing = _by_idempotency_key(_scoped_key(cashier, idempotency_key))
    if existing is not None:
        return existing, False
    if original.status not in RESENDABLE:
        raise CannotResend(rules.N_("Only a failed or refused payment can be sent again."))
    if original.status == Status.FAILED and not describe(original.result_code or "").can_resend:
        # e.g. a locked PIN (8006) or a till set-up error (2028): a new prompt cannot succeed.
        raise CannotResend(
            rules.N_("M-PESA cannot take this payment: a new prompt would fail too.")
        )
    attempts = (
        db.session.execute(select(Payment.status).where(Payment.sale_ref == original.sale_ref))
        .scalars()
        .all()
    )
    if Status.PAID in attempts:
        raise CannotResend(rules.N_("This sale is already paid."))
    if any(s not in RESENDABLE for s in attempts):
        raise CannotResend(
            rules.N_("Another attempt for this sale is still open; wait for its result.")
        )
    return initiate_payment(
        original.till,
        cashier,
        phone=original.phone,
        amount=original.amount_kes,
        reference=original.account_reference,
        idempotency_key=idempotency_key,
        resend_of=original,
        now=now,
    )


def cancel_locally(payment: Payment, user: User | None, *, now: datetime | None = None) -> bool:
    """Mark the sale given up at the counter. Daraja cannot withdraw a prompt, so the status
    is untouched and a success that still arrives shows as "paid after cancel"."""
    if payment.cancelled_at is not None or payment.status == Status.PAID:
        return False
    payment.cancelled_at = now or utcnow()
    payment.cancelled_by_id = user.id if user else None
    db.session.add(
        PaymentEvent(
            payment_id=payment.id,
            source="manual",
            kind="cancel_local",
            from_status=payment.status,
            to_status=payment.status,
            note="cancelled at the counter",
            idem_key="cancel_local",
        )
    )
    db.session.commit()
    return True


def _scoped_key(cashier: User | None, key: str) -> str:
    """Keys are per user: one cashier can never claim (or block) another cashier's sale."""
    if not key or len(key) > 48:
        raise ValueError("idempotency key must be 1 to 48 characters")
    return f"{cashier.id if cashier else 0}:{key}"


class ResolveError(ValueError):
    """A manual resolution that cannot be accepted."""


_RECEIPT = re.compile(r"[A-Z0-9]{10}")


def resolve_manually(
    payment: Payment, admin: User, *, paid: bool, receipt: str, note: str
) -> Applied:
    """Settle an `unknown` or `unconfirmed` payment from the M-PESA statement, by hand.

    Goes through the transition table like any other outcome (source "manual"), so a paid
    payment is never downgraded and the reason is kept as an event."""
    if payment.status not in (Status.UNKNOWN, Status.UNCONFIRMED):
        raise ResolveError("Only an unknown or unconfirmed payment can be resolved by hand.")
    note = " ".join(note.split())[:200]
    if not note:
        raise ResolveError("Say how you checked (for example: the M-PESA statement).")
    receipt = receipt.strip().upper()
    if paid and not _RECEIPT.fullmatch(receipt):
        raise ResolveError("Enter the M-PESA receipt number from the statement (10 characters).")
    outcome = Outcome(
        Event.SUCCESS if paid else Event.FAILURE,
        "manual",
        result_code="0" if paid else "manual",
        result_desc=f"resolved by {admin.username}: {note}",
        receipt_number=receipt if paid else None,
        note=f"resolved by {admin.username}: {note}",
        data={"amount": payment.amount_kes} if paid else None,
    )
    return apply_event(payment.id, outcome)


def _by_idempotency_key(key: str) -> Payment | None:
    return db.session.execute(
        select(Payment).where(Payment.idempotency_key == key)
    ).scalar_one_or_none()


def _push(payment_id: int) -> None:
    payment = db.session.get(Payment, payment_id)
    till = payment.till
    try:
        # Built before any network call: a bad till setting fails here, and nothing was sent.
        client = tills.client_for(till)
        request = StkPushRequest(
            business_short_code=till.shortcode,
            passkey=tills.passkey(till),
            transaction_type=till.transaction_type,
            amount=payment.amount_kes,
            party_a=payment.phone,
            party_b=till.party_b,
            phone_number=payment.phone,
            callback_url=tills.callback_url(till),
            account_reference=payment.account_reference,
            transaction_desc=payment.transaction_desc,
        )
    except SecretUnavailable as exc:
        apply_event(
            payment_id,
            Outcome(Event.PUSH_REJECTED, "push", error_code="credentials", error_message=str(exc)),
        )
        return
    except (ValueError, TypeError) as exc:
        apply_event(
            payment_id,
            Outcome(Event.PUSH_REJECTED, "push", error_code="settings", error_message=str(exc)),
        )
        return
    try:
        accepted = client.stk_push(request)
    except DarajaError as exc:
        event = Event.PUSH_UNKNOWN if exc.may_have_been_processed else Event.PUSH_REJECTED
        apply_event(
            payment_id,
            Outcome(
                event,
                "push",
                # What we act on is the kind of refusal; Daraja's own code stays as evidence.
                error_code=type(exc).__name__,
                error_message=" ".join(
                    part for part in (exc.error_code, exc.error_message or exc.message) if part
                ),
            ),
        )
        return
    except Exception as exc:  # a bug or an unforeseen failure: we cannot know if it was sent
        log.exception("unexpected failure while pushing payment %s", payment_id)
        apply_event(
            payment_id,
            Outcome(
                Event.PUSH_UNKNOWN, "push", error_code="internal", error_message=repr(exc)[:500]
            ),
        )
        return
    apply_event(
        payment_id,
        Outcome(
            Event.PUSH_ACCEPTED,
            "push",
            merchant_request_id=accepted.merchant_request_id,
            checkout_request_id=accepted.checkout_request_id,
        ),
    )
    # A callback may have beaten this response to the database and been kept as an orphan.
    from app.callbacks.inbox import reprocess_orphans

    reprocess_orphans(accepted.checkout_request_id)


def adopt_checkout_id(
    payment_id: int, checkout_request_id: str, merchant_request_id: str | None, raw_id: int
) -> None:
    """Give an `unknown` payment the CheckoutRequestID a matching callback revealed."""
    for _attempt in range(5):
        payment = db.session.get(Payment, payment_id, populate_existing=True)
        if payment.checkout_request_id is not None:
            return  # the push's own answer got there first
        payment.checkout_request_id = checkout_request_id
        payment.merchant_request_id = merchant_request_id
        db.session.add(
            PaymentEvent(
                payment_id=payment_id,
                source="callback",
                kind="matched",
                from_status=payment.status,
                to_status=payment.status,
                note="lost push matched to a callback by phone, amount and time",
                raw_callback_id=raw_id,
                idem_key=f"matched:{checkout_request_id}",
            )
        )
        try:
            db.session.commit()
            return
        except StaleDataError:
            db.session.rollback()  # the push answer or the poller wrote first: look again
    raise RuntimeError(f"payment {payment_id}: could not record its CheckoutRequestID")


def apply_event(payment_id: int, outcome: Outcome, *, now: datetime | None = None) -> Applied:
    """Apply one outcome to one payment through the transition table, and commit.

    Safe to call concurrently and repeatedly with the same outcome: exactly one caller
    moves the payment; the others get DUPLICATE (or CONFLICT when the fact contradicts).
    """
    for _attempt in range(5):
        try:
            result = _apply_once(payment_id, outcome, now or utcnow())
            db.session.commit()
            return result
        except StaleDataError:
            # Someone else changed the row since we read it: read again and re-decide.
            db.session.rollback()
        except IntegrityError:
            # The same event is already recorded (unique idem key), or the receipt is taken.
            db.session.rollback()
            return _after_integrity_error(payment_id, outcome)
    raise RuntimeError(f"payment {payment_id}: could not apply {outcome.event} after retries")


def _after_integrity_error(payment_id: int, outcome: Outcome) -> Applied:
    if outcome.receipt_number:
        other = db.session.execute(
            select(Payment.id).where(
                Payment.receipt_number == outcome.receipt_number, Payment.id != payment_id
            )
        ).scalar_one_or_none()
        if other is not None:
            _record_flag(payment_id, outcome, f"receipt already belongs to payment {other}")
            return Applied.CONFLICT
    return Applied.DUPLICATE


def _record_flag(payment_id: int, outcome: Outcome, why: str) -> None:
    payment = db.session.get(Payment, payment_id)
    db.session.add(_event(payment, outcome, payment.status, conflict=True, note=why, flag=True))
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()  # this very conflict is already on record


def _event(
    payment: Payment,
    outcome: Outcome,
    to_status: str,
    *,
    conflict: bool = False,
    note: str | None = None,
    flag: bool = False,
) -> PaymentEvent:
    data = dict(outcome.data or {})
    for name in ("receipt_number", "transaction_date", "error_code", "error_message"):
        value = getattr(outcome, name)
        if value is not None:
            data[name] = value
    return PaymentEvent(
        payment_id=payment.id,
        source=outcome.source,
        kind=str(outcome.event),
        from_status=payment.status,
        to_status=to_status,
        conflict=conflict,
        result_code=outcome.result_code,
        note=note or outcome.note or outcome.result_desc,
        data=data or None,
        raw_callback_id=outcome.raw_callback_id,
        idem_key=("flag:" if flag else "") + outcome.idem_key,
    )


def _apply_once(payment_id: int, outcome: Outcome, now: datetime) -> Applied:
    payment = db.session.get(Payment, payment_id, populate_existing=True)
    if payment is None:
        raise LookupError(f"no payment {payment_id}")
    transition = next_transition(payment.status, outcome.event)

    if outcome.event is Event.SUCCESS:
        mismatch = _success_mismatch(payment, outcome)
        if mismatch:
            # A "success" for another amount is not our money: keep it for a human, don't pay.
            db.session.add(
                _event(payment, outcome, payment.status, conflict=True, note=mismatch, flag=True)
            )
            db.session.flush()
            return Applied.CONFLICT

    if transition.action is Action.IGNORE:
        if (
            outcome.event is Event.SUCCESS
            and payment.status == Status.PAID
            and payment.receipt_number is None
            and outcome.receipt_number
        ):
            # Paid was learned from a query (no receipt); the late callback brings it.
            db.session.add(_event(payment, outcome, payment.status, note="receipt received"))
            payment.receipt_number = outcome.receipt_number
            payment.mpesa_transaction_date = outcome.transaction_date
            db.session.flush()
            return Applied.MOVED
        if _contradicts(payment, outcome):
            db.session.add(_event(payment, outcome, payment.status, conflict=True, flag=True))
            db.session.flush()
            return Applied.CONFLICT
        return Applied.DUPLICATE

    if transition.action is Action.FLAG:
        db.session.add(_event(payment, outcome, payment.status, conflict=True, flag=True))
        db.session.flush()
        return Applied.CONFLICT

    to = transition.to
    conflict = payment.status == Status.FAILED and to == Status.PAID
    db.session.add(
        _event(
            payment,
            outcome,
            to,
            conflict=conflict,
            note="late success replaces an earlier failure" if conflict else None,
        )
    )
    payment.status = to
    _copy_outcome_fields(payment, outcome)
    if to in FINAL:
        payment.final_at = now
        payment.next_query_at = None
    elif to == Status.PENDING:
        payment.pushed_at = now
        payment.next_query_at = now + timedelta(seconds=current_app.config["QUERY_FIRST_DELAY"])
    elif to == Status.UNCONFIRMED:
        payment.next_query_at = now + timedelta(seconds=_reconcile_interval())
    elif to == Status.UNKNOWN:
        # Without a CheckoutRequestID there is nothing to query; with one, keep reconciling.
        payment.next_query_at = (
            now + timedelta(seconds=_reconcile_interval()) if payment.checkout_request_id else None
        )
    db.session.flush()
    return Applied.MOVED


def _reconcile_interval() -> int:
    return current_app.config["RECONCILE_INTERVAL"]


def _copy_outcome_fields(payment: Payment, outcome: Outcome) -> None:
    for name in (
        "merchant_request_id",
        "checkout_request_id",
        "result_code",
        "result_desc",
        "receipt_number",
    ):
        value = getattr(outcome, name)
        if value is not None:
            setattr(payment, name, value)
    if outcome.transaction_date is not None:
        payment.mpesa_transaction_date = outcome.transaction_date
    if outcome.error_code is not None:
        payment.push_error_code = outcome.error_code
        payment.push_error_message = outcome.error_message


def _success_mismatch(payment: Payment, outcome: Outcome) -> str | None:
    amount = (outcome.data or {}).get("amount")
    if amount is not None and amount != payment.amount_kes:
        return f"success for KES {amount} does not match the KES {payment.amount_kes} asked"
    return None


def _contradicts(payment: Payment, outcome: Outcome) -> bool:
    """A repeated final event that disagrees with the recorded one (not a plain duplicate)."""
    if outcome.event is Event.FAILURE and payment.status == Status.FAILED:
        return outcome.result_code != payment.result_code
    if outcome.event is Event.SUCCESS and payment.status == Status.PAID:
        return bool(outcome.receipt_number) and outcome.receipt_number != payment.receipt_number
    return False


def give_up_stale(now: datetime | None = None) -> int:
    """Pending too long → unconfirmed; initiating too long (a crash mid-push) → unknown."""
    now = now or utcnow()
    give_up = timedelta(seconds=current_app.config["GIVE_UP_AFTER"])
    stale = (
        db.session.execute(
            select(Payment.id).where(
                ((Payment.status == Status.PENDING) & (Payment.pushed_at < now - give_up))
                | (
                    (Payment.status == Status.INITIATING)
                    # A live push is bounded by the connect+read timeouts; allow a margin.
                    & (Payment.created_at < now - timedelta(seconds=_initiating_grace()))
                )
            )
        )
        .scalars()
        .all()
    )
    db.session.rollback()  # end the read transaction before the per-row writes
    moved = 0
    for payment_id in stale:
        outcome = Outcome(Event.GIVE_UP, "expiry", note="no final answer in time")
        if apply_event(payment_id, outcome, now=now) is Applied.MOVED:
            moved += 1
    return moved


def _initiating_grace() -> float:
    # The longest a live push can take: token fetch, push, invalid-token answer, second
    # fetch and retry, each bounded by connect + read timeouts, plus a margin.
    cfg = current_app.config
    return 4 * (cfg["DARAJA_CONNECT_TIMEOUT"] + cfg["DARAJA_READ_TIMEOUT"]) + 30
