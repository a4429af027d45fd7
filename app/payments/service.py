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
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm.exc import StaleDataError

from app.crypto import SecretUnavailable
from app.daraja.errors import DarajaError
from app.daraja.schemas import StkPushAccepted, StkPushRequest
from app.extensions import db
from app.i18n import N_
from app.models import CallbackOutcome, Payment, PaymentEvent, RawCallback, Till, User
from app.models.types import db_now, utcnow
from app.payments import guards, journal, rules, tills
from app.payments.resend import resend_state
from app.payments.states import (
    FINAL,
    RESOLVABLE_BY_HAND,
    Action,
    Event,
    Mark,
    Source,
    Status,
    next_transition,
)

log = logging.getLogger(__name__)


class Applied(enum.StrEnum):
    MOVED = "applied"
    DUPLICATE = "duplicate"
    CONFLICT = "conflict"


@dataclass(frozen=True)
class Outcome:
    """A fact learned about a payment, from whichever source."""

    event: Event
    source: Source
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
    def final(cls, source: Source, result_code: str, **fields: Any) -> Outcome:
        """A final ResultCode from a callback or a query: "0" is success, anything else failure."""
        event = Event.SUCCESS if result_code == "0" else Event.FAILURE
        return cls(event, source, result_code=result_code, **fields)

    @property
    def idem_key(self) -> str:
        return f"{self.event}:{self.result_code or ''}:{self.receipt_number or ''}"


class PushNotRecorded(RuntimeError):
    """Daraja answered the push but the database could not record the answer.

    The answer is in the push journal (app.payments.journal) and the log; the push-journal
    job records it once the database is back. The caller must not send the push again.
    """

    def __init__(self, payment_id: int, checkout_request_id: str | None) -> None:
        super().__init__(f"payment {payment_id}: push answer {checkout_request_id} not recorded")
        self.payment_id = payment_id
        self.checkout_request_id = checkout_request_id


def record(
    payment: Payment,
    kind: Event | Mark,
    source: Source,
    *,
    idem_key: str,
    to_status: str | None = None,
    conflict: bool = False,
    result_code: str | None = None,
    note: str | None = None,
    data: dict[str, Any] | None = None,
    raw_callback_id: int | None = None,
) -> PaymentEvent:
    """Append one event to a payment's timeline (added to the session, not committed).

    The one place a PaymentEvent is built. `idem_key` is unique per payment, so the same fact
    recorded twice fails at flush instead of appearing twice.
    """
    event = PaymentEvent(
        payment_id=payment.id,
        source=source,
        kind=kind,
        # The timeline starts from nothing: "created" is the move into the first status.
        from_status=None if kind is Mark.CREATED else payment.status,
        to_status=to_status or payment.status,
        conflict=conflict,
        result_code=result_code,
        note=note,
        data=data or None,
        raw_callback_id=raw_callback_id,
        idem_key=idem_key,
    )
    db.session.add(event)
    return event


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
    """Save the payment (create_payment), then send its STK push (send_push), in one call.

    For callers that can wait for Daraja's answer (a page without JavaScript, the API).
    Returns (payment, created); a repeated idempotency key returns the first payment, and
    sends it only if nobody ever did.
    """
    payment, created = create_payment(
        till,
        cashier,
        phone=phone,
        amount=amount,
        reference=reference,
        idempotency_key=idempotency_key,
        resend_of=resend_of,
        now=now,
    )
    send_push(payment.id)
    return db.session.get(Payment, payment.id, populate_existing=True), created


def create_payment(
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
    """Validate and save the row as `initiating`; nothing is sent yet (see send_push).

    Returns (payment, created). A repeated idempotency key returns the first payment. Raises
    rules.InputError (guards.TryLater when M-Pesa would refuse it now) before anything is
    saved. `resend_of` links a new attempt to its sale.
    """
    msisdn = rules.normalise_phone(phone, allow_ported=till.allow_ported_numbers)
    amount_kes = rules.parse_amount(amount, current_app.config["MAX_AMOUNT"])
    account_reference = rules.clean_reference(reference, default="Sale")
    idempotency_key = _scoped_key(cashier, idempotency_key)
    existing = _by_idempotency_key(idempotency_key)
    if existing is not None:
        return existing, False
    # The database's clock stamps the push, so that every process judges its age alike.
    now = now or db_now()
    try:
        guards.check_before_push(msisdn, amount_kes, now)
    except guards.TryLater:
        # A double submit whose twin was saved since we looked: the twin is what the refusal
        # sees (same phone and amount), and it is the answer.
        existing = _by_idempotency_key(idempotency_key)
        if existing is not None:
            return existing, False
        raise

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
        created_at=now,
        # Stamped now, so the guards see a push about to leave, in flight or timed out too.
        pushed_at=now,
    )
    try:
        db.session.add(payment)
        db.session.flush()  # the unique idempotency key can fail here, not only at commit
        record(payment, Mark.CREATED, Source.PUSH, idem_key="created")
        # Durable before the push: if we crash mid-push, the row shows an attempt was made.
        db.session.commit()
    except IntegrityError:
        # Another request with the same key won the race: that one's row is the answer.
        db.session.rollback()
        existing = _by_idempotency_key(idempotency_key)
        if existing is None:
            raise
        return existing, False
    return payment, True


def send_push(payment_id: int) -> bool:
    """Send the STK push of a saved payment, once: True if this call sent it.

    The right to send is claimed in the database before anything leaves, so a double click,
    a reloaded page or two tabs can never push one payment twice. Raises PushNotRecorded
    when Daraja answered but the answer could not be saved.
    """
    if not _claim_push(payment_id):
        return False
    _push(payment_id)
    return True


def _claim_push(payment_id: int) -> bool:
    won = db.session.execute(
        update(Payment)
        .where(
            Payment.id == payment_id,
            Payment.status == Status.INITIATING,
            Payment.push_started_at.is_(None),
        )
        .values(push_started_at=db_now())
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    return won == 1


class CannotResend(rules.InputError):
    """This attempt must not be sent again (its sale is paid, or money may have moved)."""


def resend_payment(
    original: Payment,
    cashier: User | None,
    *,
    idempotency_key: str,
    now: datetime | None = None,
    send: bool = True,
) -> tuple[Payment, bool]:
    """A new attempt for the same sale, after a failed or refused one.

    Refused (CannotResend, or guards.TryLater while M-Pesa would refuse it) by the same rule
    the counter shows (app.payments.resend). Never for `unknown` or `unconfirmed` attempts:
    their money may have moved, and a second prompt could charge the customer twice.
    `send=False` saves the new attempt only (the counter's row then sends it).
    """
    existing = _by_idempotency_key(_scoped_key(cashier, idempotency_key))
    if existing is not None:
        return existing, False
    now = now or db_now()
    state = resend_state(original, now)
    if state.refused is not None:
        raise CannotResend(state.refused)
    if state.wait:
        raise guards.TryLater(state.reason or "wait", state.wait)
    create = initiate_payment if send else create_payment
    return create(
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
    record(
        payment,
        Mark.CANCELLED_HERE,
        Source.MANUAL,
        idem_key="cancel_local",
        note=f"cancelled at the counter by {user.username}" if user else "cancelled here",
    )
    db.session.commit()
    return True


def _scoped_key(cashier: User | None, key: str) -> str:
    """Keys are per user: one cashier can never claim (or block) another cashier's sale."""
    if not key or len(key) > 48:
        raise ValueError("idempotency key must be 1 to 48 characters")
    return f"{cashier.id if cashier else 0}:{key}"


class ResolveError(ValueError):
    """A manual resolution that cannot be accepted; `other_payment_id` names the payment that
    already holds the receipt number, when that is the reason. The message is an untranslated
    msgid with its `params`, so the page can show it in the reader's language."""

    def __init__(
        self, msgid: str, *, other_payment_id: int | None = None, **params: object
    ) -> None:
        super().__init__(msgid % params if params else msgid)
        self.msgid, self.params = msgid, params
        self.other_payment_id = other_payment_id


_RECEIPT = re.compile(r"[A-Z0-9]{10}")


def _clean_receipt(receipt: str) -> str:
    receipt = receipt.strip().upper()
    if not _RECEIPT.fullmatch(receipt):
        raise ResolveError(
            N_("Enter the M-PESA receipt number from the statement (10 characters).")
        )
    return receipt


def _receipt_holder(receipt: str, payment_id: int) -> int | None:
    return db.session.execute(
        select(Payment.id).where(Payment.receipt_number == receipt, Payment.id != payment_id)
    ).scalar_one_or_none()


def _refuse_taken_receipt(receipt: str, payment_id: int) -> None:
    other = _receipt_holder(receipt, payment_id)
    if other is not None:
        raise ResolveError(
            N_("Receipt %(receipt)s already belongs to payment %(other)s."),
            other_payment_id=other,
            receipt=receipt,
            other=other,
        )


def _clean_note(note: str) -> str:
    note = " ".join(note.split())[:200]
    if not note:
        raise ResolveError(N_("Say how you checked (for example: the M-PESA statement)."))
    return note


def resolve_manually(
    payment: Payment, admin: User, *, paid: bool, receipt: str, note: str
) -> Applied:
    """Settle an `unknown` or `unconfirmed` payment from the M-PESA statement, by hand.

    Goes through the transition table like any other outcome (source "manual"), so a paid
    payment is never downgraded and the reason is kept as an event. Returns MOVED only when
    the status changed."""
    if payment.status not in RESOLVABLE_BY_HAND:
        raise ResolveError(N_("Only an unknown or unconfirmed payment can be resolved by hand."))
    note = _clean_note(note)
    if paid:
        receipt = _clean_receipt(receipt)
        _refuse_taken_receipt(receipt, payment.id)
    outcome = Outcome(
        Event.SUCCESS if paid else Event.FAILURE,
        Source.MANUAL,
        result_code="0" if paid else "manual",
        result_desc=f"resolved by {admin.username}: {note}",
        receipt_number=receipt if paid else None,
        note=f"resolved by {admin.username}: {note}",
        data={"amount": payment.amount_kes} if paid else None,
    )
    applied = apply_event(payment.id, outcome)
    if applied is Applied.CONFLICT and paid:
        # Lost a race for the receipt: say whose it is.
        _refuse_taken_receipt(receipt, payment.id)
    return applied


def attach_receipt(payment: Payment, admin: User, *, receipt: str, note: str) -> None:
    """Give a paid payment whose receipt is pending (success learned by query) its receipt
    number, read from the customer's SMS or the statement. Refused when the receipt already
    belongs to another payment."""
    if payment.status != Status.PAID or payment.receipt_number is not None:
        raise ResolveError(N_("Only a paid payment whose receipt is pending can get one by hand."))
    receipt = _clean_receipt(receipt)
    note = _clean_note(note)
    _refuse_taken_receipt(receipt, payment.id)
    payment.receipt_number = receipt
    record(
        payment,
        Mark.RECEIPT_ATTACHED,
        Source.MANUAL,
        idem_key=f"receipt_attached:{receipt}",
        note=f"receipt {receipt} attached by {admin.username}: {note}",
        data={"receipt_number": receipt},
    )
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        _refuse_taken_receipt(receipt, payment.id)
        raise ResolveError(N_("The payment changed meanwhile; reload and try again.")) from None
    except StaleDataError:
        db.session.rollback()
        raise ResolveError(N_("The payment changed meanwhile; reload and try again.")) from None


def receipt_from_statement(payment: Payment, receipt: str, *, line_note: str) -> bool:
    """Fill in the receipt of a paid payment whose receipt was pending, from the statement line
    that matched it by amount, phone and time. False (nothing done) when it has one already or
    another payment holds that receipt. The caller commits."""
    if payment.status != Status.PAID or payment.receipt_number is not None:
        return False
    if _receipt_holder(receipt, payment.id) is not None:
        return False
    payment.receipt_number = receipt
    record(
        payment,
        Mark.RECEIPT_ATTACHED,
        Source.STATEMENT,
        idem_key=f"receipt_attached:{receipt}",
        note=f"receipt {receipt} from the statement: {line_note}",
        data={"receipt_number": receipt},
    )
    return True


def paid_by_statement(
    payment: Payment, user: User, *, receipt: str, amount_cents: int, note: str
) -> Applied:
    """An owner attaches a statement line (money in, no sale of ours claims it) to a sale whose
    outcome we never learned: the statement is M-PESA's own record, so the sale is paid."""
    if payment.status not in RESOLVABLE_BY_HAND:
        raise ResolveError(N_("Only an unknown or unconfirmed payment can be resolved by hand."))
    if amount_cents != payment.amount_kes * 100:
        raise ResolveError(
            N_("The amounts differ: KES %(sale)s for the sale, KES %(paid)s paid."),
            sale=payment.amount_kes,
            paid=f"{amount_cents / 100:g}",
        )
    receipt = _clean_receipt(receipt)
    _refuse_taken_receipt(receipt, payment.id)
    outcome = Outcome(
        Event.SUCCESS,
        Source.STATEMENT,
        result_code="0",
        result_desc=f"on the M-PESA statement; attached by {user.username}",
        receipt_number=receipt,
        note=f"statement line attached by {user.username}: {note}",
        data={"amount": payment.amount_kes},
    )
    return apply_event(payment.id, outcome)


def _orphan_money(raw: RawCallback) -> None:
    """Refuse what is not a successful callback still waiting for a sale."""
    if raw.outcome != CallbackOutcome.ORPHAN or raw.result_code != "0" or not raw.amount:
        raise ResolveError(N_("Only a successful callback that matched no sale can be linked."))
    if not raw.receipt_number or raw.till_id is None:
        raise ResolveError(N_("This callback has no receipt or no till: check it in the inbox."))


def link_orphan(raw: RawCallback, payment: Payment, admin: User, *, note: str) -> Applied:
    """Tie a successful orphan callback to the sale whose push answer was lost (an unknown or
    unconfirmed payment of the same till and amount): the sale becomes paid with the callback's
    receipt, by hand (an admin checked; the callback alone is never proof, docs/daraja.md §8)."""
    _orphan_money(raw)
    if payment.till_id != raw.till_id:
        raise ResolveError(N_("That sale belongs to another till."))
    if payment.amount_kes != raw.amount:
        raise ResolveError(
            N_("The amounts differ: KES %(sale)s for the sale, KES %(paid)s paid."),
            sale=payment.amount_kes,
            paid=raw.amount,
        )
    note = _clean_note(note)
    applied = resolve_manually(
        payment,
        admin,
        paid=True,
        receipt=raw.receipt_number or "",
        note=f"linked to callback #{raw.id}: {note}",
    )
    if db.session.get(Payment, payment.id, populate_existing=True).status == Status.PAID:
        raw.outcome, raw.payment_id = CallbackOutcome.APPLIED, payment.id
        raw.message = f"linked by {admin.username} to payment {payment.id}"
        db.session.commit()
    return applied


def accept_orphan(raw: RawCallback, admin: User, *, note: str) -> Payment:
    """Keep a successful orphan callback as a sale of its own (money for a sale PesaDesk never
    started, e.g. a push from another system): a paid payment, dated when the money came."""
    _orphan_money(raw)
    note = _clean_note(note)
    receipt = _clean_receipt(raw.receipt_number or "")
    _refuse_taken_receipt(receipt, 0)
    payment = Payment(
        till_id=raw.till_id,
        cashier_id=None,
        # One orphan, one sale: accepting it twice fails on this key.
        idempotency_key=f"orphan-callback-{raw.id}",
        phone=raw.phone or "",
        amount_kes=raw.amount,
        account_reference="Callback",
        transaction_desc="Accepted",
        status=Status.PAID,
        checkout_request_id=raw.checkout_request_id,
        result_code="0",
        result_desc=f"accepted by {admin.username}: {note}",
        receipt_number=receipt,
        created_at=raw.received_at,
        final_at=raw.received_at,
    )
    try:
        db.session.add(payment)
        db.session.flush()
        record(payment, Mark.CREATED, Source.MANUAL, idem_key="created", to_status=Status.PAID)
        record(
            payment,
            Event.SUCCESS,
            Source.MANUAL,
            idem_key=f"orphan_accepted:{raw.id}",
            result_code="0",
            note=f"callback #{raw.id} accepted as a sale by {admin.username}: {note}",
            data={"amount": raw.amount, "receipt_number": receipt},
            raw_callback_id=raw.id,
        )
        raw.outcome, raw.payment_id = CallbackOutcome.APPLIED, payment.id
        raw.message = f"accepted by {admin.username} as payment {payment.id}"
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise ResolveError(N_("The payment changed meanwhile; reload and try again.")) from None
    return payment


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
        outcome = Outcome(
            Event.PUSH_REJECTED, Source.PUSH, error_code="credentials", error_message=str(exc)
        )
        _record_push_answer(payment_id, outcome)
        return
    except (ValueError, TypeError) as exc:
        outcome = Outcome(
            Event.PUSH_REJECTED, Source.PUSH, error_code="settings", error_message=str(exc)
        )
        _record_push_answer(payment_id, outcome)
        return
    try:
        accepted = client.stk_push(request)
    except DarajaError as exc:
        event = Event.PUSH_UNKNOWN if exc.may_have_been_processed else Event.PUSH_REJECTED
        outcome = Outcome(
            event,
            Source.PUSH,
            # What we act on is the kind of refusal; Daraja's own code stays as evidence.
            error_code=type(exc).__name__,
            error_message=" ".join(
                part for part in (exc.error_code, exc.error_message or exc.message) if part
            ),
        )
    except Exception as exc:  # a bug or an unforeseen failure: we cannot know if it was sent
        log.exception("unexpected failure while pushing payment %s", payment_id)
        outcome = Outcome(
            Event.PUSH_UNKNOWN, Source.PUSH, error_code="internal", error_message=repr(exc)[:500]
        )
    else:
        outcome = accepted_outcome(accepted)
    _record_push_answer(payment_id, outcome)


def accepted_outcome(accepted: StkPushAccepted, source: Source = Source.PUSH) -> Outcome:
    """Daraja accepted the push: the prompt is on its way, and this is its CheckoutRequestID."""
    return Outcome(
        Event.PUSH_ACCEPTED,
        source,
        merchant_request_id=accepted.merchant_request_id,
        checkout_request_id=accepted.checkout_request_id,
    )


def _record_push_answer(payment_id: int, outcome: Outcome) -> None:
    """Save Daraja's answer; if the database fails now, keep it in the journal instead."""
    try:
        apply_event(payment_id, outcome)
    except SQLAlchemyError:
        db.session.rollback()
        journal.keep(
            {
                "payment_id": payment_id,
                "event": str(outcome.event),
                "checkout_request_id": outcome.checkout_request_id,
                "merchant_request_id": outcome.merchant_request_id,
                "error_code": outcome.error_code,
                "error_message": outcome.error_message,
                "at": utcnow().isoformat(),
            }
        )
        raise PushNotRecorded(payment_id, outcome.checkout_request_id) from None


def replay_journal_entry(entry: dict[str, Any]) -> None:
    """Record one push answer kept in the journal (the push-journal job calls this)."""
    apply_event(
        int(entry["payment_id"]),
        Outcome(
            Event(entry["event"]),
            Source.JOURNAL,
            merchant_request_id=entry.get("merchant_request_id"),
            checkout_request_id=entry.get("checkout_request_id"),
            error_code=entry.get("error_code"),
            error_message=entry.get("error_message"),
            note=f"push answer of {entry.get('at')}, kept in the journal during a database outage",
        ),
    )


# --- Lost push answers: a CheckoutRequestID claimed by a callback, confirmed by a query -------


def _candidate_key(mark: Mark, checkout_request_id: str) -> str:
    return f"{mark}:{checkout_request_id}"[:96]


def add_candidate(
    payment_id: int, checkout_request_id: str, merchant_request_id: str | None, raw_id: int
) -> bool:
    """A callback for a CheckoutRequestID we never stored matched this payment (push answer
    lost or still in flight) by phone, amount and time. Record the claim; do not believe it.

    An `unknown` payment is queried at once with that id (app.jobs.poll); the query decides.
    A payment still `initiating` waits for its push answer, which names the real id.
    Returns False when this id was already refuted for this payment (a replay: not asked
    about again).
    """
    if _has_event(payment_id, _candidate_key(Mark.CANDIDATE_REFUTED, checkout_request_id)):
        return False
    idem_key = _candidate_key(Mark.CANDIDATE, checkout_request_id)
    for _attempt in range(5):
        payment = db.session.get(Payment, payment_id, populate_existing=True)
        if payment.checkout_request_id is not None:
            return True  # the push's own answer named the id meanwhile: it decides
        if payment.candidate_checkout_id is None:
            # One claim is queried at a time; the others wait (the inbox sweep offers the
            # next one if this one is refuted).
            payment.candidate_checkout_id = checkout_request_id
            if payment.status == Status.UNKNOWN:
                payment.next_query_at = db_now()
        if not _has_event(payment_id, idem_key):
            record(
                payment,
                Mark.CANDIDATE,
                Source.CALLBACK,
                idem_key=idem_key,
                note=(
                    f"a callback for {checkout_request_id}, an id we never stored, matches "
                    "this payment by phone, amount and time; an STK query must confirm it"
                ),
                data={
                    "checkout_request_id": checkout_request_id,
                    "merchant_request_id": merchant_request_id,
                },
                raw_callback_id=raw_id,
            )
        try:
            db.session.commit()
            return True
        except (IntegrityError, StaleDataError):
            db.session.rollback()  # another writer got there first: look again
    raise RuntimeError(f"payment {payment_id}: could not record a candidate CheckoutRequestID")


def _has_event(payment_id: int, idem_key: str) -> bool:
    return (
        db.session.execute(
            select(PaymentEvent.id).where(
                PaymentEvent.payment_id == payment_id, PaymentEvent.idem_key == idem_key
            )
        ).first()
        is not None
    )


def confirm_candidate(
    payment_id: int, checkout_request_id: str, query_outcome: Outcome, *, now: datetime
) -> Applied:
    """An STK query on our shortcode knew the candidate id: adopt it, then let the query's
    answer decide the payment, in one transaction."""
    for _attempt in range(5):
        payment = db.session.get(Payment, payment_id, populate_existing=True)
        if payment.checkout_request_id not in (None, checkout_request_id):
            refute_candidate(
                payment_id, checkout_request_id, "the push answer named another CheckoutRequestID"
            )
            return Applied.CONFLICT
        if payment.checkout_request_id is None:
            payment.checkout_request_id = checkout_request_id
            payment.candidate_checkout_id = None
            record(
                payment,
                Mark.CANDIDATE_CONFIRMED,
                Source.QUERY,
                idem_key=_candidate_key(Mark.CANDIDATE_CONFIRMED, checkout_request_id),
                note=f"an STK query on our shortcode knows {checkout_request_id}: it is ours",
                data={"checkout_request_id": checkout_request_id},
            )
        try:
            result = _apply_once(payment_id, query_outcome, now)
            db.session.commit()
            return result
        except StaleDataError:
            db.session.rollback()
        except IntegrityError:
            db.session.rollback()
            return _after_integrity_error(payment_id, query_outcome)
    raise RuntimeError(f"payment {payment_id}: could not confirm {checkout_request_id}")


def refute_candidate(payment_id: int, checkout_request_id: str, why: str) -> None:
    """The candidate id is not this payment's (the query does not know it, or the push answer
    named another): forget it, and keep the refusal on the timeline (once)."""
    idem_key = _candidate_key(Mark.CANDIDATE_REFUTED, checkout_request_id)
    for _attempt in range(5):
        payment = db.session.get(Payment, payment_id, populate_existing=True)
        if payment.candidate_checkout_id == checkout_request_id:
            payment.candidate_checkout_id = None
            if payment.checkout_request_id is None:
                payment.next_query_at = None  # nothing left to ask until another claim comes
        if not _has_event(payment_id, idem_key):
            record(
                payment,
                Mark.CANDIDATE_REFUTED,
                Source.QUERY,
                idem_key=idem_key,
                conflict=True,
                note=f"callback's CheckoutRequestID {checkout_request_id} not believed: {why}",
                data={"checkout_request_id": checkout_request_id},
            )
        try:
            db.session.commit()
            return
        except (IntegrityError, StaleDataError):
            db.session.rollback()  # another writer got there first: look again
    raise RuntimeError(f"payment {payment_id}: could not refute {checkout_request_id}")


def record_query_mismatch(
    payment_id: int, asked: str, named: str | None, result_code: str | None
) -> None:
    """A query answer named another CheckoutRequestID (or none): it settles nothing."""
    payment = db.session.get(Payment, payment_id, populate_existing=True)
    record(
        payment,
        Mark.QUERY_MISMATCH,
        Source.QUERY,
        idem_key=f"query_mismatch:{named}:{result_code}"[:96],
        conflict=True,
        result_code=result_code,
        note=(
            f"we asked about {asked} and the answer is about {named or 'no CheckoutRequestID'}: "
            "not applied; asking again later"
        ),
        data={"asked": asked, "named": named, "result_code": result_code},
    )
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()  # the same wrong answer is already on record


# --- Applying outcomes through the table ------------------------------------------------------


def apply_event(payment_id: int, outcome: Outcome, *, now: datetime | None = None) -> Applied:
    """Apply one outcome to one payment through the transition table, and commit.

    Safe to call concurrently and repeatedly with the same outcome: exactly one caller
    moves the payment; the others get DUPLICATE (or CONFLICT when the fact contradicts).
    """
    now = now or db_now()
    for _attempt in range(5):
        try:
            result = _apply_once(payment_id, outcome, now)
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
        other = _receipt_holder(outcome.receipt_number, payment_id)
        if other is not None:
            _record_flag(payment_id, outcome, f"receipt already belongs to payment {other}")
            return Applied.CONFLICT
    flagged = db.session.execute(
        select(PaymentEvent.id).where(
            PaymentEvent.payment_id == payment_id,
            PaymentEvent.idem_key == _FLAG + outcome.idem_key,
        )
    ).first()
    # The same contradiction again is still a contradiction, not a duplicate.
    return Applied.CONFLICT if flagged else Applied.DUPLICATE


_FLAG = "flag:"


def _record_flag(payment_id: int, outcome: Outcome, why: str) -> None:
    payment = db.session.get(Payment, payment_id)
    _outcome_event(payment, outcome, payment.status, conflict=True, note=why, flag=True)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()  # this very conflict is already on record


def _outcome_event(
    payment: Payment,
    outcome: Outcome,
    to_status: str,
    *,
    conflict: bool = False,
    note: str | None = None,
    flag: bool = False,
) -> PaymentEvent:
    data = dict(outcome.data or {})
    for name in ("receipt_number", "transaction_date", "checkout_request_id", "error_code"):
        value = getattr(outcome, name)
        if value is not None:
            data[name] = value
    if outcome.error_message is not None:
        data["error_message"] = outcome.error_message
    return record(
        payment,
        outcome.event,
        outcome.source,
        idem_key=(_FLAG if flag else "") + outcome.idem_key,
        to_status=to_status,
        conflict=conflict,
        result_code=outcome.result_code,
        note=note or outcome.note or outcome.result_desc,
        data=data,
        raw_callback_id=outcome.raw_callback_id,
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
            _outcome_event(
                payment, outcome, payment.status, conflict=True, note=mismatch, flag=True
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
            _outcome_event(payment, outcome, payment.status, note="receipt received")
            payment.receipt_number = outcome.receipt_number
            payment.mpesa_transaction_date = outcome.transaction_date
            db.session.flush()
            return Applied.MOVED
        if _contradicts(payment, outcome):
            _outcome_event(payment, outcome, payment.status, conflict=True, flag=True)
            db.session.flush()
            return Applied.CONFLICT
        return Applied.DUPLICATE

    if transition.action is Action.FLAG:
        _outcome_event(payment, outcome, payment.status, conflict=True, flag=True)
        db.session.flush()
        return Applied.CONFLICT

    to = transition.to
    conflict = payment.status == Status.FAILED and to == Status.PAID
    _outcome_event(
        payment,
        outcome,
        to,
        conflict=conflict,
        note="late success replaces an earlier failure" if conflict else None,
    )
    if (
        outcome.event is Event.PUSH_ACCEPTED
        and payment.candidate_checkout_id is not None
        and payment.candidate_checkout_id != outcome.checkout_request_id
    ):
        # A callback claimed another id for this payment; the push answer is Daraja's own word.
        record(
            payment,
            Mark.CANDIDATE_REFUTED,
            outcome.source,
            idem_key=_candidate_key(Mark.CANDIDATE_REFUTED, payment.candidate_checkout_id),
            conflict=True,
            note=(
                f"callback's CheckoutRequestID {payment.candidate_checkout_id} not believed: "
                f"the push answer named {outcome.checkout_request_id}"
            ),
            data={"checkout_request_id": payment.candidate_checkout_id},
        )
    if outcome.event is Event.PUSH_ACCEPTED:
        payment.candidate_checkout_id = None
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
        if payment.checkout_request_id:
            payment.next_query_at = now + timedelta(seconds=_reconcile_interval())
        elif payment.candidate_checkout_id:
            payment.next_query_at = now  # a callback claimed an id: ask Daraja about it now
        else:
            payment.next_query_at = None  # nothing to ask with
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


#: Seconds a saved payment may wait for its push to be claimed (the counter's row sends it at
#: once); past this nobody will, and since nothing left, it is refused as not sent.
UNSENT_GRACE = 60


def give_up_stale(now: datetime | None = None) -> int:
    """Pending too long → unconfirmed; a push claimed but never answered (a crash mid-push)
    → unknown; a push never claimed (the counter's page closed first) → not sent.

    `now` defaults to the database's clock, which also stamped pushed_at and created_at: a
    scheduler whose own clock runs ahead cannot give up on a push that is still live.
    """
    now = now or db_now()
    give_up = timedelta(seconds=current_app.config["GIVE_UP_AFTER"])
    initiating = Payment.status == Status.INITIATING
    stale = (
        db.session.execute(
            select(Payment.id).where(
                ((Payment.status == Status.PENDING) & (Payment.pushed_at < now - give_up))
                | (
                    initiating
                    & Payment.push_started_at.is_not(None)
                    # A live push is bounded by the connect+read timeouts; allow a margin.
                    & (Payment.push_started_at < now - timedelta(seconds=_initiating_grace()))
                )
            )
        )
        .scalars()
        .all()
    )
    unsent = (
        db.session.execute(
            select(Payment.id).where(
                initiating,
                Payment.push_started_at.is_(None),
                Payment.created_at < now - timedelta(seconds=UNSENT_GRACE),
            )
        )
        .scalars()
        .all()
    )
    db.session.rollback()  # end the read transaction before the per-row writes
    moved = 0
    for payment_id in stale:
        outcome = Outcome(Event.GIVE_UP, Source.EXPIRY, note="no final answer in time")
        if apply_event(payment_id, outcome, now=now) is Applied.MOVED:
            moved += 1
    for payment_id in unsent:
        # Claimed here, so that a late request from the counter cannot send it after all.
        if not _claim_push(payment_id):
            continue
        outcome = Outcome(
            Event.PUSH_REJECTED,
            Source.EXPIRY,
            error_code="not_sent",
            error_message="the counter never sent this push; nothing left PesaDesk",
        )
        if apply_event(payment_id, outcome, now=now) is Applied.MOVED:
            moved += 1
    return moved


def _initiating_grace() -> float:
    # The longest a live push can take: token fetch, push, invalid-token answer, second
    # fetch and retry, each bounded by connect + read timeouts, plus a margin.
    cfg = current_app.config
    return 4 * (cfg["DARAJA_CONNECT_TIMEOUT"] + cfg["DARAJA_READ_TIMEOUT"]) + 30
