"""`flask db upgrade` builds the schema on SQLite and PostgreSQL, and it matches the models."""

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask_migrate import upgrade

from app import ROOT
from app.extensions import db
from tests.conftest import _psycopg_url, make_test_app


@pytest.fixture
def empty_database_url(backend, sqlite_dir, request):
    if backend == "sqlite":
        path = sqlite_dir / "migrations.db"
        path.unlink(missing_ok=True)
        yield f"sqlite:///{path}"
        return
    base = request.getfixturevalue("pg_database")
    name = base.rsplit("/", 1)[1] + "_mig"
    admin = sa.create_engine(_psycopg_url(base), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield base.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


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
