"""Payment vocabulary: statuses, their groups, event kinds and sources, and the transition table.

This module is pure data and one lookup; app.payments.service is the only caller that
writes the result to the database. Every other module names a status group, an event kind or
a source through the names defined here, never by spelling out the strings again.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Status(enum.StrEnum):
    INITIATING = "initiating"  # row saved, push not yet answered
    PENDING = "pending"  # Daraja accepted the push; the customer has a prompt
    PAID = "paid"  # ResultCode 0 from a callback or a query
    FAILED = "failed"  # a final non-zero ResultCode
    REJECTED = "rejected"  # Daraja refused the push; no prompt was sent
    UNKNOWN = "unknown"  # the push may have been sent but its answer was lost
    UNCONFIRMED = "unconfirmed"  # no final answer by the give-up time; money may have moved


class Event(enum.StrEnum):
    """A fact that may move a payment: the input of the transition table."""

    PUSH_ACCEPTED = "push_accepted"
    PUSH_REJECTED = "push_rejected"
    PUSH_UNKNOWN = "push_unknown"
    SUCCESS = "success"
    FAILURE = "failure"
    GIVE_UP = "give_up"


class Mark(enum.StrEnum):
    """Something recorded on a payment's timeline that is not an input of the table.

    A payment event's kind is an Event or a Mark.
    """

    CREATED = "created"  # the row was saved, before anything was sent
    CANCELLED_HERE = "cancel_local"  # the cashier gave up on the sale at the counter
    #: a callback for a CheckoutRequestID we never stored matched this payment by phone,
    #: amount and time; it is believed only once an STK query confirms it
    CANDIDATE = "candidate"
    CANDIDATE_CONFIRMED = "candidate_confirmed"  # the query knew that CheckoutRequestID
    CANDIDATE_REFUTED = "candidate_refuted"  # it did not, or another id turned out to be ours
    QUERY_MISMATCH = "query_mismatch"  # a query answer named another CheckoutRequestID
    RECEIPT_ATTACHED = "receipt_attached"  # an admin typed the receipt of a query-only success


class Source(enum.StrEnum):
    """Where a payment event came from."""

    PUSH = "push"  # our STK push and Daraja's synchronous answer
    CALLBACK = "callback"  # a POST to the till's callback URL
    QUERY = "query"  # an STK status query sent by the poller
    EXPIRY = "expiry"  # the give-up job: no final answer in time
    MANUAL = "manual"  # a person: a cancel at the counter, an admin's resolution
    JOURNAL = "journal"  # a push answer kept in the local journal while the database was down
    STATEMENT = "statement"  # the till's M-PESA statement, uploaded and matched by an owner


class Action(enum.Enum):
    MOVE = "move"  # change status and append an event
    IGNORE = "ignore"  # nothing new (a duplicate, or no longer relevant)
    FLAG = "flag"  # keep the status but append a conflict event for a human to see


@dataclass(frozen=True)
class Transition:
    action: Action
    to: Status | None = None


def _move(to: Status) -> Transition:
    return Transition(Action.MOVE, to)


IGNORE = Transition(Action.IGNORE)
FLAG = Transition(Action.FLAG)

S, E = Status, Event

#: Every (status, event) pair has an entry; tests check completeness and the money invariants.
TABLE: dict[tuple[Status, Event], Transition] = {
    # A callback may beat the push response to our database, hence success/failure here.
    (S.INITIATING, E.PUSH_ACCEPTED): _move(S.PENDING),
    (S.INITIATING, E.PUSH_REJECTED): _move(S.REJECTED),
    (S.INITIATING, E.PUSH_UNKNOWN): _move(S.UNKNOWN),
    (S.INITIATING, E.SUCCESS): _move(S.PAID),
    (S.INITIATING, E.FAILURE): _move(S.FAILED),
    # Left initiating by a crash between save and push: a prompt may exist, so never "failed".
    (S.INITIATING, E.GIVE_UP): _move(S.UNKNOWN),
    (S.PENDING, E.PUSH_ACCEPTED): IGNORE,
    (S.PENDING, E.PUSH_REJECTED): FLAG,
    (S.PENDING, E.PUSH_UNKNOWN): IGNORE,
    (S.PENDING, E.SUCCESS): _move(S.PAID),
    (S.PENDING, E.FAILURE): _move(S.FAILED),
    (S.PENDING, E.GIVE_UP): _move(S.UNCONFIRMED),
    # The give-up job declared a slow push unknown, then Daraja's answer arrived after all:
    # keep its CheckoutRequestID and follow the prompt like any other.
    (S.UNKNOWN, E.PUSH_ACCEPTED): _move(S.PENDING),
    (S.UNKNOWN, E.PUSH_REJECTED): IGNORE,
    (S.UNKNOWN, E.PUSH_UNKNOWN): IGNORE,
    (S.UNKNOWN, E.SUCCESS): _move(S.PAID),
    (S.UNKNOWN, E.FAILURE): _move(S.FAILED),
    (S.UNKNOWN, E.GIVE_UP): IGNORE,
    (S.UNCONFIRMED, E.PUSH_ACCEPTED): IGNORE,
    (S.UNCONFIRMED, E.PUSH_REJECTED): IGNORE,
    (S.UNCONFIRMED, E.PUSH_UNKNOWN): IGNORE,
    (S.UNCONFIRMED, E.SUCCESS): _move(S.PAID),
    (S.UNCONFIRMED, E.FAILURE): _move(S.FAILED),
    (S.UNCONFIRMED, E.GIVE_UP): IGNORE,
    # Paid is never downgraded; a contradicting failure is kept as evidence.
    (S.PAID, E.PUSH_ACCEPTED): IGNORE,
    (S.PAID, E.PUSH_REJECTED): IGNORE,
    (S.PAID, E.PUSH_UNKNOWN): IGNORE,
    (S.PAID, E.SUCCESS): IGNORE,
    (S.PAID, E.FAILURE): FLAG,
    (S.PAID, E.GIVE_UP): IGNORE,
    # A late success always wins over a failure we already showed.
    (S.FAILED, E.PUSH_ACCEPTED): IGNORE,
    (S.FAILED, E.PUSH_REJECTED): IGNORE,
    (S.FAILED, E.PUSH_UNKNOWN): IGNORE,
    (S.FAILED, E.SUCCESS): _move(S.PAID),
    (S.FAILED, E.FAILURE): IGNORE,
    (S.FAILED, E.GIVE_UP): IGNORE,
    (S.REJECTED, E.PUSH_ACCEPTED): FLAG,
    (S.REJECTED, E.PUSH_REJECTED): IGNORE,
    (S.REJECTED, E.PUSH_UNKNOWN): IGNORE,
    (S.REJECTED, E.SUCCESS): _move(S.PAID),
    (S.REJECTED, E.FAILURE): IGNORE,
    (S.REJECTED, E.GIVE_UP): IGNORE,
}

# --- Status groups: each is named here once and used everywhere -----------------------------

#: Nothing more is expected from Daraja for this attempt.
FINAL = frozenset({S.PAID, S.FAILED, S.REJECTED})
#: Not final: the counter's "still open", the owner's "unresolved", what a day close questions.
OPEN = frozenset({S.INITIATING, S.PENDING, S.UNKNOWN, S.UNCONFIRMED})
#: The customer may still be on the prompt: the poller asks at the quick pace.
POLLED = frozenset({S.PENDING})
#: Past the give-up time or with a lost push answer: reconciliation keeps asking, slowly.
RECONCILED = frozenset({S.UNCONFIRMED, S.UNKNOWN})
#: Every status the poller asks Daraja about (when there is a CheckoutRequestID to ask with).
QUERYABLE = POLLED | RECONCILED
#: A prompt may be on the customer's phone right now (M-Pesa's one-live-prompt rule).
MAY_HAVE_PROMPT = frozenset({S.INITIATING, S.PENDING, S.UNKNOWN})
#: No CheckoutRequestID yet: a callback may reveal it (matched by phone, amount and time).
AWAITING_CHECKOUT_ID = frozenset({S.INITIATING, S.UNKNOWN})
#: A new attempt for the same sale may be sent (nothing can still arrive for this one).
RESENDABLE = frozenset({S.FAILED, S.REJECTED})
#: An admin may settle these by hand from the M-PESA statement.
RESOLVABLE_BY_HAND = frozenset({S.UNKNOWN, S.UNCONFIRMED})


def next_transition(current: Status | str, event: Event | str) -> Transition:
    """Look up what `event` does to a payment in `current` status."""
    return TABLE[(Status(current), Event(event))]


def mermaid() -> str:
    """The MOVE transitions of TABLE as a Mermaid state diagram (pasted into the README)."""
    lines = ["stateDiagram-v2", "    [*] --> initiating: cashier sends"]
    for (status, event), t in TABLE.items():
        if t.action is Action.MOVE:
            lines.append(f"    {status} --> {t.to}: {event}")
    return "\n".join(lines)
