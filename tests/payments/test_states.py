"""The transition table: complete, and it never loses money."""

import pytest

from app.payments.states import (
    FINAL,
    TABLE,
    Action,
    Event,
    Status,
    next_transition,
)

CELLS = [(s, e) for s in Status for e in Event]


def test_every_status_event_pair_has_an_entry():
    assert set(TABLE) == set(CELLS)


@pytest.mark.parametrize(("status", "event"), CELLS)
def test_cell_is_well_formed(status, event):
    t = next_transition(status, event)
    assert (t.action is Action.MOVE) == (t.to is not None)
    if t.action is Action.MOVE:
        assert t.to != status, "a move must change the status"


@pytest.mark.parametrize("status", list(Status))
def test_success_always_ends_paid(status):
    t = next_transition(status, Event.SUCCESS)
    assert t.to is Status.PAID or (status is Status.PAID and t.action is Action.IGNORE)


@pytest.mark.parametrize("event", list(Event))
def test_paid_is_never_downgraded(event):
    t = next_transition(Status.PAID, event)
    assert t.action is not Action.MOVE


@pytest.mark.parametrize("status", [Status.PENDING, Status.UNKNOWN, Status.UNCONFIRMED])
def test_failure_is_final_from_open_states(status):
    assert next_transition(status, Event.FAILURE).to is Status.FAILED


def test_give_up_never_fails_a_payment():
    for status in Status:
        t = next_transition(status, Event.GIVE_UP)
        assert t.to not in (Status.FAILED, Status.REJECTED)
    assert next_transition(Status.PENDING, Event.GIVE_UP).to is Status.UNCONFIRMED
    assert next_transition(Status.INITIATING, Event.GIVE_UP).to is Status.UNKNOWN


@pytest.mark.parametrize(
    ("status", "event", "action", "to"),
    [
        (Status.INITIATING, Event.PUSH_ACCEPTED, Action.MOVE, Status.PENDING),
        (Status.INITIATING, Event.PUSH_REJECTED, Action.MOVE, Status.REJECTED),
        (Status.INITIATING, Event.PUSH_UNKNOWN, Action.MOVE, Status.UNKNOWN),
        (Status.FAILED, Event.SUCCESS, Action.MOVE, Status.PAID),
        (Status.PAID, Event.FAILURE, Action.FLAG, None),
        (Status.PAID, Event.SUCCESS, Action.IGNORE, None),
        (Status.PENDING, Event.PUSH_REJECTED, Action.FLAG, None),
        (Status.UNKNOWN, Event.PUSH_ACCEPTED, Action.MOVE, Status.PENDING),
    ],
)
def test_key_cells(status, event, action, to):
    t = next_transition(status, event)
    assert (t.action, t.to) == (action, to)


def test_final_statuses_take_no_push_events():
    for status in FINAL:
        for event in (Event.PUSH_ACCEPTED, Event.PUSH_UNKNOWN, Event.GIVE_UP):
            assert next_transition(status, event).action is not Action.MOVE
