"""OAuth and access-token behaviour of the simulator (docs/daraja.md §2)."""

from __future__ import annotations

import base64
import re

import pytest


def _basic(key: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{key}:{secret}".encode()).decode()


def _assert_invalid_token(response) -> None:
    assert response.status_code == 404
    body = response.get_json()
    assert body["errorCode"] == "404.001.03"
    assert body["errorMessage"] == "Invalid Access Token"
    assert body["requestId"]


def test_good_credentials_issue_token_with_string_expiry(daraja):
    response = daraja.oauth()
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == {"access_token", "expires_in"}
    assert body["expires_in"] == "3599"
    assert re.fullmatch(r"[A-Za-z0-9]{28}", body["access_token"])


def test_each_token_is_random(daraja):
    tokens = {daraja.token(fresh=True) for _ in range(5)}
    assert len(tokens) == 5


def test_token_ttl_is_configurable(make_app, daraja_for):
    body = daraja_for(make_app(SIMULATOR_TOKEN_TTL=120)).oauth().get_json()
    assert body["expires_in"] == "120"


@pytest.mark.parametrize(
    "auth",
    [
        _basic("pesadesk-demo-key", "wrong"),
        _basic("someone-else", "pesadesk-demo-secret"),
        "Basic " + base64.b64encode(b"no-colon-at-all").decode(),
        "Basic !!!not-base64!!!",
    ],
)
def test_wrong_credentials_get_400_with_empty_body(daraja, auth):
    response = daraja.oauth(auth=auth)
    assert response.status_code == 400
    assert response.data == b""


def test_configured_credentials_replace_the_default(make_app, daraja_for):
    daraja = daraja_for(make_app(SIMULATOR_CREDENTIALS=[("k1", "s1"), ("k2", "s2")]))
    assert daraja.oauth(auth=_basic("k2", "s2")).status_code == 200
    assert daraja.oauth(auth=_basic("pesadesk-demo-key", "pesadesk-demo-secret")).data == b""


@pytest.mark.parametrize(
    "query", ["grant_type=password", "grant_type=client_credentials%20", "", "grant=x"]
)
def test_wrong_grant_type_gets_400_008_02(daraja, query):
    response = daraja.oauth(query=query)
    assert response.status_code == 400
    body = response.get_json()
    assert body["errorCode"] == "400.008.02"
    assert body["errorMessage"] == "Invalid grant type passed"


@pytest.mark.parametrize("auth", ["", "Bearer abc", "Digest x=y", "Basic"])
def test_non_basic_auth_gets_400_008_01(daraja, auth):
    response = daraja.oauth(auth=auth)
    assert response.status_code == 400
    body = response.get_json()
    assert body["errorCode"] == "400.008.01"
    assert body["errorMessage"] == "Invalid authentication type passed"


def test_oauth_is_get_only(client):
    response = client.post("/simulator/oauth/v1/generate?grant_type=client_credentials")
    assert response.status_code == 405
    assert response.get_json()["errorCode"] == "405.001"


def test_new_token_invalidates_the_previous_one(daraja):
    first = daraja.token(fresh=True)
    second = daraja.token(fresh=True)
    _assert_invalid_token(daraja.push(token=first))
    assert daraja.push(token=second).status_code == 200


def test_a_new_token_leaves_another_apps_token_valid(make_app, daraja_for):
    """One Daraja app per till: refreshing one till's token must not log the other out."""
    from app.simulator.settings import DEMO_CONSUMER_KEY, DEMO_CONSUMER_SECRET

    apps = ((DEMO_CONSUMER_KEY, DEMO_CONSUMER_SECRET), ("branch-key", "branch-secret"))
    daraja = daraja_for(make_app(SIMULATOR_CREDENTIALS=apps))
    branch = daraja.json_of(daraja.oauth(auth=_basic("branch-key", "branch-secret")))
    first = daraja.token(fresh=True)
    daraja.token(fresh=True)  # the demo app's second token ends its first one only
    _assert_invalid_token(daraja.push(token=first))
    assert daraja.push(token=branch["access_token"]).status_code == 200


def test_single_token_rule_can_be_switched_off(make_app, daraja_for):
    daraja = daraja_for(make_app(SIMULATOR_SINGLE_TOKEN=False))
    first = daraja.token(fresh=True)
    daraja.token(fresh=True)
    assert daraja.push(token=first).status_code == 200


def test_expired_token_is_rejected(make_app, daraja_for):
    daraja = daraja_for(make_app(SIMULATOR_TOKEN_TTL=0))
    token = daraja.token()
    assert daraja.oauth().get_json()["expires_in"] == "0"
    _assert_invalid_token(daraja.push(token=token))


def test_control_expire_invalidates_every_token_until_refreshed(daraja):
    old = daraja.token(fresh=True)
    response = daraja.control("POST", "tokens/expire")
    assert response.get_json() == {"expired": 1}
    _assert_invalid_token(daraja.push(token=old))
    _assert_invalid_token(daraja.query("ws_CO_x", token=old))
    # The refresh-and-retry path a client must implement:
    assert daraja.push(token=daraja.token(fresh=True)).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Basic abc"},
        {"Authorization": "Bearer not-a-token"},
    ],
)
@pytest.mark.parametrize(
    "path", ["/simulator/mpesa/stkpush/v1/processrequest", "/simulator/mpesa/stkpushquery/v1/query"]
)
def test_missing_or_wrong_token_gets_404_001_03(client, headers, path):
    _assert_invalid_token(client.post(path, json={}, headers=headers))
