"""Fixtures for simulator tests: a fast simulator app, a Daraja-speaking helper, a receiver."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from app.simulator.server import create_simulator_app
from app.simulator.state import get_state
from tests.simulator.support import DROP, FAST_CONFIG, Daraja, Receiver, wait_until


@pytest.fixture(name="wait_until")
def wait_until_fixture() -> Callable[..., Any]:
    return wait_until


@pytest.fixture
def drop() -> object:
    return DROP


@pytest.fixture
def daraja_cls() -> type[Daraja]:
    """The helper class itself, for binding it to a live server's requests calls."""
    return Daraja


@pytest.fixture(scope="session")
def receiver() -> Iterator[Receiver]:
    # Shared by all tests (each filters by its own CheckoutRequestID): starting and stopping
    # a server per test would dominate the suite's run time.
    rec = Receiver()
    yield rec
    rec.close()


@pytest.fixture
def make_app() -> Iterator[Callable[..., Flask]]:
    apps: list[Flask] = []

    def factory(**config: Any) -> Flask:
        app = create_simulator_app({**FAST_CONFIG, **config})
        apps.append(app)
        return app

    yield factory
    for app in apps:
        get_state(app).reset()  # cancel outstanding timers so nothing fires after the test


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    return make_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def _client_call(client: FlaskClient) -> Callable[..., TestResponse]:
    def call(method: str, path: str, **kwargs: Any) -> TestResponse:
        return client.open(path, method=method, **kwargs)

    return call


@pytest.fixture
def daraja(client: FlaskClient, receiver: Receiver) -> Daraja:
    return Daraja(_client_call(client), receiver.url, lambda r: r.get_json())


@pytest.fixture
def daraja_for(receiver: Receiver) -> Callable[[Flask], Daraja]:
    """Daraja helper bound to a specific (custom-configured) app's test client."""

    def build(app: Flask) -> Daraja:
        return Daraja(_client_call(app.test_client()), receiver.url, lambda r: r.get_json())

    return build
