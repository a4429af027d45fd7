"""The EXPLAIN helper flags queries that no index serves and passes the others, on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from flask import Flask

from app.extensions import db
from app.models import Payment, User
from tests.conftest import make_test_app, sibling_pg_database
from tests.support.explain import Captured, capture_statements, plans_without_index


@pytest.fixture
def pg_app(pg_database: str, sqlite_dir) -> Iterator[Flask]:
    """The app on a fresh, empty PostgreSQL schema (EXPLAIN is PostgreSQL's)."""
    with sibling_pg_database(pg_database, "_explain") as url:
        app = make_test_app(url, sqlite_dir)
        with app.app_context():
            db.create_all()
            yield app
            db.session.remove()
            db.engine.dispose()


def _problems(captured: list[Captured]) -> list[str]:
    with db.engine.connect() as conn:
        return plans_without_index(conn, captured)


def test_a_filter_that_no_index_serves_is_flagged(pg_app):
    with capture_statements(db.engine) as captured:
        db.session.execute(sa.select(Payment).where(Payment.transaction_desc == "Nothing")).all()
    problems = _problems(captured)
    assert len(problems) == 1
    assert "on payments" in problems[0]
    assert "transaction_desc" in problems[0]


def test_a_primary_key_lookup_passes(pg_app):
    with capture_statements(db.engine) as captured:
        db.session.get(Payment, 7)
    assert [s for s, _ in captured if "FROM payments" in s], captured
    assert _problems(captured) == []


def test_reading_the_whole_primary_key_is_flagged_but_the_newest_row_is_not(pg_app):
    """With sequential scans off, the planner walks the primary key instead: still a full scan."""
    with capture_statements(db.engine) as everything:
        db.session.execute(sa.select(Payment).order_by(Payment.id)).all()
    with capture_statements(db.engine) as newest:
        db.session.execute(sa.select(Payment).order_by(Payment.id.desc()).limit(1)).all()
    (problem,) = _problems(everything)
    assert "reads the whole index" in problem
    assert _problems(newest) == []


def test_parameters_and_percent_signs_are_bound_as_they_ran(pg_app):
    """`%` is doubled in psycopg's SQL and IN lists expand: both must replay unchanged."""
    with capture_statements(db.engine) as captured:
        db.session.execute(
            sa.select(Payment.id).where(
                Payment.id.in_([3, 5]), Payment.id % 2 == 1, Payment.phone.like("2547%")
            )
        ).all()
    assert any("%%" in statement for statement, _ in captured)
    assert _problems(captured) == []


def test_statements_that_cannot_be_explained_are_skipped(pg_app):
    with capture_statements(db.engine) as captured:
        db.session.execute(sa.select(sa.func.statement_timestamp())).scalar()
        with db.session.begin_nested():
            db.session.add(User(username="someone", role="cashier", password_hash="x"))
        db.session.commit()
    kinds = {statement.split()[0].upper() for statement, _ in captured}
    assert {"SELECT", "SAVEPOINT", "INSERT", "RELEASE"} <= kinds
    assert _problems(captured) == []


def test_it_runs_inside_an_open_transaction_and_leaves_its_settings_behind(pg_app):
    with db.engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))
        assert conn.in_transaction()
        plans_without_index(conn, [("SELECT id FROM payments WHERE id = %(id)s", {"id": 1})])
        setting = conn.execute(sa.text("SHOW enable_seqscan")).scalar_one()
    assert setting == "on"
