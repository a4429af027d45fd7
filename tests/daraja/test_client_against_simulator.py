"""The Daraja client against the built-in simulator over real HTTP on 127.0.0.1."""

from __future__ import annotations

import dataclasses
import threading

import pytest
import requests

from app.config import SANDBOX_PASSKEY
from app.daraja import DarajaClient, DarajaWrongCredentials, StkPushRequest
from app.simulator.server import create_simulator_app, serve_in_thread

pytestmark = pytest.mark.http

KEY, SECRET = "pesadesk-demo-key", "pesadesk-demo-secret"


class CountingSession(requests.Session):
    """A real session that counts requests by path, to prove what went over the wire."""

    def __init__(self) -> None:
        super().__init__()
        self.paths: list[str] = []
        self._lock = threading.Lock()

    def request(self, method, url, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        with self._lock:
            self.paths.append(url.split("/simulator", 1)[1].split("?")[0])
        return super().request(method, url, *args, **kwargs)

    def count(self, fragment: str) -> int:
        return sum(fragment in p for p in self.paths)


@pytest.fixture
def simulator():
    app = create_simulator_app({"SIMULATOR_CALLBACK_DELAY": 30.0})
    running = serve_in_thread(app)
    yield running
    running.shutdown()


@pytest.fixture
def session():
    return CountingSession()


def _push_request(amount: int = 10) -> StkPushRequest:
    return StkPushRequest(
        business_short_code="174379",
        passkey=SANDBOX_PASSKEY,
        transaction_type="CustomerPayBillOnline",
        amount=amount,
        party_a="254708374149",
        party_b="174379",
        phone_number="254708374149",
        # Nobody listens here: the simulator's callback fails quietly, which is fine for this test.
        callback_url="http://127.0.0.1:9/cb/stk/x",
        account_reference="Sale",
        transaction_desc="Payment",
    )


def test_token_is_reused_across_calls(simulator, session):
    client = DarajaClient(simulator.base_url, KEY, SECRET, session=session)
    accepted = client.stk_push(_push_request())
    for _ in range(3):
        result = client.stk_query("174379", SANDBOX_PASSKEY, accepted.checkout_request_id)
        assert result.pending is True  # "being processed" is pending, not an error
    assert session.count("/oauth/") == 1
    assert session.count("/stkpushquery/") == 3


def test_expired_token_is_refreshed_and_the_call_retried_once(simulator, session):
    client = DarajaClient(simulator.base_url, KEY, SECRET, session=session)
    client.get_token()
    # The simulator forgets every token: the next call gets 404.001.03 "Invalid Access Token".
    r = requests.post(f"{simulator.base_url}/_control/tokens/expire", timeout=5)
    assert r.status_code == 200
    accepted = client.stk_push(_push_request())
    assert accepted.checkout_request_id.startswith("ws_CO_")
    assert session.count("/oauth/") == 2
    assert session.count("/stkpush/v1/processrequest") == 2  # the refused one and the retry


def test_a_new_token_from_elsewhere_invalidates_ours(simulator, session):
    client = DarajaClient(simulator.base_url, KEY, SECRET, session=session)
    client.get_token()
    other = DarajaClient(simulator.base_url, KEY, SECRET)
    other.get_token()  # Daraja: issuing a token invalidates the previous one
    client.stk_push(_push_request(11))
    assert session.count("/oauth/") == 2


def test_wrong_passkey_is_a_typed_error_and_not_retried(simulator, session):
    client = DarajaClient(simulator.base_url, KEY, SECRET, session=session)
    bad = dataclasses.replace(_push_request(), passkey="not-the-passkey")
    with pytest.raises(DarajaWrongCredentials) as exc:
        client.stk_push(bad)
    assert exc.value.may_have_been_processed is False
    assert session.count("/stkpush/v1/processrequest") == 1


def test_concurrent_first_calls_fetch_one_token(simulator, session):
    client = DarajaClient(simulator.base_url, KEY, SECRET, session=session)
    barrier = threading.Barrier(8)
    tokens: list[str] = []

    def worker() -> None:
        barrier.wait()
        tokens.append(client.get_token())

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert len(set(tokens)) == 1 and len(tokens) == 8
    assert session.count("/oauth/") == 1
