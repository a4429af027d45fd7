"""Payment statuses and the transition table: (status, event) -> next status, ignore or flag.

This module is pure data and one lookup; app.payments.service is the only caller that
writes the result to the database.
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
    PUSH_ACCEPTED = "push_accepted"
    PUSH_REJECTED = "push_rejected"
    PUSH_UNKNOWN = "push_unknown"
    SUCCESS = "success"
    FAILURE = "failure"
    GIVE_UP = "give_up"


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

#: Statuses in which nothing more is expected from Daraja for this attempt.
FINAL = frozenset({S.PAID, S.FAILED, S.REJECTED})
#: Statuses the poller keeps asking Daraja about.
QUERYABLE = frozenset({S.PENDING, S.UNCONFIRMED, S.UNKNOWN})


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
