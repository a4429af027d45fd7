"""PESADESK_ENCRYPTION_KEY: one key or several (newest first), checked at start-up, rotated."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet, InvalidToken
from flask import Flask

from app import create_app, crypto
from app.config import SANDBOX_PASSKEY
from app.daraja.tokens import CachedToken
from app.extensions import db
from app.models import AuditAction, AuditEntry, DarajaToken, Till
from app.payments import tills
from app.payments.token_store import DatabaseTokenStore
from app.simulator.settings import DEMO_CONSUMER_KEY, DEMO_CONSUMER_SECRET

KEY_A = Fernet.generate_key().decode()
KEY_B = Fernet.generate_key().decode()
TILL_COLUMNS = ("consumer_key_enc", "consumer_secret_enc", "passkey_enc")


def _bare_app(key: str) -> Flask:
    """An app with only a key configured: crypto needs no database for these tests."""
    app = Flask(__name__)
    app.config["ENCRYPTION_KEY"] = key
    return app


# --- parsing -----------------------------------------------------------------------------


def test_one_key_encrypts_and_decrypts():
    with _bare_app(KEY_A).app_context():
        assert len(crypto.keys()) == 1
        assert crypto.decrypt(crypto.encrypt("s3cret")) == "s3cret"
        assert crypto.key_position(crypto.encrypt("s3cret")) == 0


def test_several_keys_encrypt_with_the_first_and_decrypt_with_any():
    with _bare_app(KEY_A).app_context():
        under_a = crypto.encrypt("old secret")
    with _bare_app(f"  {KEY_B} ,\n{KEY_A} ").app_context():  # whitespace around keys is fine
        assert len(crypto.keys()) == 2
        assert crypto.decrypt(under_a) == "old secret"
        assert crypto.key_position(under_a) == 1
        under_b = crypto.encrypt("new secret")
        assert crypto.key_position(under_b) == 0
        assert crypto.key_position(crypto.rotate(under_a)) == 0
        # token_store calls these two methods on whatever fernet() returns
        assert crypto.fernet().decrypt(crypto.fernet().encrypt(b"tok")) == b"tok"
    with _bare_app(KEY_B).app_context():
        assert crypto.decrypt(under_b) == "new secret"
        with pytest.raises(crypto.SecretUnavailable):
            crypto.decrypt(under_a)
        assert crypto.key_position(under_a) is None
        with pytest.raises(InvalidToken):
            crypto.rotate(under_a)


def test_a_good_value_has_no_problems():
    assert crypto.check_keys(KEY_A) == []
    assert crypto.check_keys(f"{KEY_B}, {KEY_A}") == []
    assert crypto.check_keys(KEY_A.encode()) == []
    # Fernet takes the standard base64 alphabet too; an install whose key has "+" or "/"
    # (e.g. from `openssl rand -base64 32`) must keep starting.
    standard = base64.b64encode(bytes([0xFB] * 32)).decode()
    assert "+" in standard and "/" in standard
    assert crypto.check_keys(standard) == []
    Fernet(standard.encode())


@pytest.mark.parametrize("value", [None, "", "   ", b""])
def test_a_missing_key_is_named(value):
    assert crypto.check_keys(value) == [
        "PESADESK_ENCRYPTION_KEY is not set "
        "(a Fernet key is 32 bytes in URL-safe base64, 44 characters)"
    ]


def test_not_base64():
    garbage = "this is not a key!"
    problems = crypto.check_keys(garbage)
    assert problems == [
        "PESADESK_ENCRYPTION_KEY is not URL-safe base64 "
        "(a Fernet key is 32 bytes in URL-safe base64, 44 characters)"
    ]


def test_missing_padding_is_not_base64():
    assert "not URL-safe base64" in crypto.check_keys(KEY_A.rstrip("="))[0]


def test_wrong_length():
    short = base64.urlsafe_b64encode(b"0123456789abcdef").decode()  # 16 bytes, 24 characters
    assert crypto.check_keys(short) == [
        "PESADESK_ENCRYPTION_KEY decodes to 16 bytes from 24 characters "
        "(a Fernet key is 32 bytes in URL-safe base64, 44 characters)"
    ]


def test_problems_name_the_key_by_position_among_several():
    short = base64.urlsafe_b64encode(b"x" * 31).decode()
    problems = crypto.check_keys(f"{KEY_B},{short},not base64,{KEY_B},")
    assert problems == [
        "key 2 of 5 in PESADESK_ENCRYPTION_KEY decodes to 31 bytes from 44 characters "
        "(a Fernet key is 32 bytes in URL-safe base64, 44 characters)",
        "key 3 of 5 in PESADESK_ENCRYPTION_KEY is not URL-safe base64 "
        "(a Fernet key is 32 bytes in URL-safe base64, 44 characters)",
        "key 4 of 5 in PESADESK_ENCRYPTION_KEY is the same as key 1 of 5",
        "key 5 of 5 in PESADESK_ENCRYPTION_KEY is empty (two commas in a row, or one at an end?)",
    ]
    assert not any(KEY_B in p or short in p for p in problems)  # a key is a secret


def test_a_bad_key_at_run_time_is_a_secret_unavailable():
    with _bare_app("nope").app_context(), pytest.raises(crypto.SecretUnavailable, match="base64"):
        crypto.encrypt("x")


# --- start-up ----------------------------------------------------------------------------


def _production_config(**overrides) -> dict:
    config = {
        "TESTING": False,
        "DEMO": False,
        "SIMULATOR_ENABLED": False,
        "SECRET_KEY": "x" * 32,
        "SQLALCHEMY_DATABASE_URI": "sqlite://",
    }
    config.update(overrides)
    return config


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        (None, "PESADESK_ENCRYPTION_KEY is not set"),
        ("", "PESADESK_ENCRYPTION_KEY is not set"),
        ("changeme", "PESADESK_ENCRYPTION_KEY decodes to 6 bytes from 8 characters"),
        ("not a key", "PESADESK_ENCRYPTION_KEY is not URL-safe base64"),
        (f"{KEY_A},{KEY_A}", "key 2 of 2 in PESADESK_ENCRYPTION_KEY is the same as key 1 of 2"),
    ],
)
def test_start_up_is_refused_outside_the_demo(key, problem):
    with pytest.raises(RuntimeError) as refused:
        create_app(_production_config(ENCRYPTION_KEY=key))
    message = str(refused.value)
    assert problem in message
    assert crypto.GENERATE_KEY in message
    assert "newest first" in message


def test_a_configured_bad_key_is_refused_in_the_demo_too():
    # Generating a fresh key would orphan what the configured one encrypted.
    with pytest.raises(RuntimeError, match="is not URL-safe base64"):
        create_app(_production_config(DEMO=True, TESTING=True, ENCRYPTION_KEY="not a key"))


def test_good_keys_start():
    app = create_app(_production_config(ENCRYPTION_KEY=f" {KEY_B} , {KEY_A} "))
    with app.app_context():
        assert len(crypto.keys()) == 2


# --- rotation (both databases) ------------------------------------------------------------


def _enc_values() -> dict[str, bytes | None]:
    """Every encrypted value in the database, by "table id column"."""
    db.session.expire_all()
    values: dict[str, bytes | None] = {}
    for column in crypto.encrypted_columns():
        for secret in crypto.stored_secrets(column):
            values[secret.where] = secret.value
    return values


def _use_keys(app, value: str) -> None:
    app.config["ENCRYPTION_KEY"] = value
    tills.reset_clients()


@pytest.fixture
def under_key_a(app, till):
    """The till's secrets and a cached Daraja token, all encrypted with key A."""
    _use_keys(app, KEY_A)
    for column, plain in zip(
        TILL_COLUMNS, (DEMO_CONSUMER_KEY, DEMO_CONSUMER_SECRET, SANDBOX_PASSKEY), strict=True
    ):
        setattr(till, column, crypto.encrypt(plain))
    db.session.commit()
    _token_store(app, till).put(CachedToken("cached-token-123", 1e12))
    return till


def _token_store(app, till) -> DatabaseTokenStore:
    return DatabaseTokenStore(db.engine, till.id, crypto.fernet(), Path(app.instance_path))


def test_every_known_secret_column_is_found(app):
    found = {f"{c.table.name}.{c.name}" for c in crypto.encrypted_columns()}
    assert {f"tills.{c}" for c in TILL_COLUMNS} | {"daraja_tokens.access_token_enc"} <= found


def test_rotate_then_drop_the_old_key(app, under_key_a):
    till = under_key_a
    updated_at = till.updated_at
    _use_keys(app, f"{KEY_B},{KEY_A}")
    runner = app.test_cli_runner()

    before = runner.invoke(args=["secrets", "check"])
    assert before.exit_code == 0, before.output
    assert "tills.passkey_enc: 1 stored; key 0: 0, key 1: 1" in before.output
    assert "4 value(s) still need an older key" in before.output

    result = runner.invoke(args=["secrets", "rotate"])
    assert result.exit_code == 0, result.output
    for column in TILL_COLUMNS:
        assert f"tills.{column}: 1 re-encrypted (was key 0: 0, key 1: 1)" in result.output
    assert "daraja_tokens.access_token_enc: 1 re-encrypted" in result.output
    assert "Re-encrypted 4 value(s) with key 0 (the newest of 2)" in result.output
    for secret in (DEMO_CONSUMER_KEY, DEMO_CONSUMER_SECRET, SANDBOX_PASSKEY, "cached-token"):
        assert secret not in result.output

    after = runner.invoke(args=["secrets", "check"])
    assert after.exit_code == 0, after.output
    assert "tills.passkey_enc: 1 stored; key 0: 1, key 1: 0" in after.output
    assert "the other keys can be removed" in after.output

    entry = db.session.execute(
        sa.select(AuditEntry).where(AuditEntry.action == AuditAction.KEYS_ROTATED)
    ).scalar_one()
    assert entry.actor_id is None and entry.detail["by"] == "cli"
    counts = entry.detail["reencrypted"]
    assert {k: counts[k] for k in ("tills.passkey_enc", "daraja_tokens.access_token_enc")} == {
        "tills.passkey_enc": 1,
        "daraja_tokens.access_token_enc": 1,
    }

    # The old key is gone: every secret still decrypts and the till still works.
    _use_keys(app, KEY_B)
    db.session.expire_all()
    till = db.session.get(Till, till.id)
    assert till.updated_at == updated_at  # re-encrypting is not an edit of the till
    assert crypto.decrypt(till.consumer_key_enc) == DEMO_CONSUMER_KEY
    assert crypto.decrypt(till.consumer_secret_enc) == DEMO_CONSUMER_SECRET
    assert tills.passkey(till) == SANDBOX_PASSKEY
    assert tills.client_for(till) is not None
    assert _token_store(app, till).get() == CachedToken("cached-token-123", 1e12)
    only_b = runner.invoke(args=["secrets", "check"])
    assert only_b.exit_code == 0, only_b.output
    assert "Every stored secret decrypts with key 0 (the only key)." in only_b.output


def test_rotate_refuses_when_a_value_cannot_be_decrypted(app, under_key_a):
    till = under_key_a
    garbage = b"gAAAAAnot-a-real-fernet-token"
    db.session.execute(sa.update(Till).where(Till.id == till.id).values(passkey_enc=garbage))
    db.session.commit()
    _use_keys(app, f"{KEY_B},{KEY_A}")
    before = _enc_values()

    runner = app.test_cli_runner()
    result = runner.invoke(args=["secrets", "rotate"])
    assert result.exit_code != 0
    assert f"tills id={till.id} passkey_enc" in result.output
    assert "nothing was changed" in result.output
    assert garbage.decode() not in result.output
    assert _enc_values() == before
    assert not db.session.execute(sa.select(AuditEntry.id)).first()

    check = runner.invoke(args=["secrets", "check"])
    assert check.exit_code != 0
    assert f"cannot be decrypted: tills id={till.id} passkey_enc" in check.output


def test_a_token_under_a_removed_key_also_refuses(app, under_key_a):
    # Keys must be removed only after `secrets check` is clean; if one went too early, the
    # operator is told where instead of having some values silently rotated and others not.
    _use_keys(app, KEY_B)
    result = app.test_cli_runner().invoke(args=["secrets", "rotate"])
    assert result.exit_code != 0
    assert "4 stored value(s) cannot be decrypted" in result.output
    assert f"daraja_tokens till_id={under_key_a.id} access_token_enc" in result.output
    raw = db.session.execute(sa.select(DarajaToken.access_token_enc)).scalar_one()
    with _bare_app(KEY_A).app_context():
        assert crypto.decrypt(raw) == "cached-token-123"
