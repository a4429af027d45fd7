"""Fixtures for running the Daraja client and the engine against every simulator scenario."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask

from app.payments import tills
from app.simulator.state import get_state
from tests.simulator.support import Receiver

# Every delay small, but with room for a poll between "query final" and a late callback, and
# a held answer well beyond the engine's (shortened) read timeout.
ENGINE_TIMING: dict[str, Any] = {
    "SIMULATOR_CALLBACK_DELAY": 0.05,
    "SIMULATOR_LATE_CALLBACK_DELAY": 1.0,
    "SIMULATOR_DELAYED_CALLBACK_DELAY": 0.6,
    "SIMULATOR_DUPLICATE_CALLBACKS": 3,
    "SIMULATOR_SECOND_CALLBACK_GAP": 0.05,
    "SIMULATOR_SLOW_RESPONSE_DELAY": 0.3,
    "SIMULATOR_TIMEOUT_RESPONSE_DELAY": 2.0,
    "SIMULATOR_PROMPT_TIMEOUT": 5.0,
    "DARAJA_READ_TIMEOUT": 1.5,
}


@pytest.fixture
def sim(live_app: Flask) -> Iterator[Flask]:
    """The full app over HTTP with its embedded simulator, tuned for fast scenarios."""
    live_app.config.update(ENGINE_TIMING)
    tills.reset_clients()  # clients keep the read timeout they were built with
    yield live_app
    # Wake held answers and cancel timers, so nothing reaches the next test's database.
    get_state(live_app).reset()


@pytest.fixture(scope="session")
def receiver() -> Iterator[Receiver]:
    rec = Receiver()
    yield rec
    rec.close()
