"""`flask db upgrade` builds the schema on SQLite and PostgreSQL, and it matches the models."""

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask_migrate import upgrade

from app import ROOT
from app.extensions import db
from tests.conftest import make_test_app, sibling_pg_database


@pytest.fixture
def empty_database_url(backend, sqlite_dir, request):
    if backend == "sqlite":
        path = sqlite_dir / "migrations.db"
        path.unlink(missing_ok=True)
        yield f"sqlite:///{path}"
        return
    with sibling_pg_database(request.getfixturevalue("pg_database"), "_mig") as url:
        yield url


def test_single_head():
    from alembic.config import Config

    config = Config(str(ROOT / "migrations" / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    assert len(ScriptDirectory.from_config(config).get_heads()) == 1


def test_upgrade_builds_a_schema_that_matches_the_models(empty_database_url, sqlite_dir):
    app = make_test_app(empty_database_url, sqlite_dir)
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
        with db.engine.connect() as conn:
            tables = set(sa.inspect(conn).get_table_names())
            assert {"users", "tills", "payments", "payment_events", "raw_callbacks"} <= tables
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(context, db.metadata)
        db.engine.dispose()
    assert diff == [], f"models and migrations disagree: {diff}"


OLD_TILL = (
    "INSERT INTO tills (id, name, shortcode, till_type, environment, callback_token,"
    " created_at, updated_at) VALUES (1, 'Old', '174379', 'paybill', 'sandbox', 't',"
    " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
)
OLD_PAYMENT = (
    "INSERT INTO payments (id, till_id, idempotency_key, phone, amount_kes, account_reference,"
    " transaction_desc, status, created_at, updated_at, query_count, version) VALUES"
    " (7, 1, 'k', '254708374149', 10, 'Sale', 'Payment', 'paid', CURRENT_TIMESTAMP,"
    " CURRENT_TIMESTAMP, 0, 1)"
)


def test_upgrade_keeps_existing_payments(empty_database_url, sqlite_dir):
    """Rows written under the first schema survive the upgrade and get a sale reference."""
    app = make_test_app(empty_database_url, sqlite_dir)
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"), revision="a27fc7a37f9c")
        with db.engine.begin() as conn:
            conn.execute(sa.text(OLD_TILL))
            conn.execute(sa.text(OLD_PAYMENT))
            conn.execute(
                sa.text(
                    "INSERT INTO users (id, username, password_hash, role, active, created_at)"
                    " VALUES (3, 'Wanjiku', 'x', 'cashier', true, CURRENT_TIMESTAMP)"
                )
            )
        upgrade(directory=str(ROOT / "migrations"))
        with db.engine.connect() as conn:
            sale_ref = conn.execute(sa.text("SELECT sale_ref FROM payments WHERE id = 7")).scalar()
            shop = conn.execute(sa.text("SELECT s.name FROM tills t JOIN shops s ON s.id ="
                                        " t.shop_id WHERE t.id = 1")).scalar()  # fmt: skip
            works_at = conn.execute(
                sa.text("SELECT till_id FROM user_tills WHERE user_id = 3")
            ).all()
            key = conn.execute(sa.text("SELECT username_key FROM users WHERE id = 3")).scalar()
        db.engine.dispose()
    assert sale_ref == "p7"
    # An install with one till moves to one shop of that name; its cashiers work there.
    assert shop == "Old" and works_at == [(1,)] and key == "wanjiku"
