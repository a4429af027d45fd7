"""Indexes for the owner's back office: takings by paid instant, the payment list's keyset.

On PostgreSQL the indexes are built CONCURRENTLY (outside a transaction), so a shop's
callbacks and sales keep flowing while a large payments table is indexed.

Revision ID: 97c3371f55a1
Revises: 3ca42aafcf2e
Create Date: 2026-12-02 11:04:52.633379

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '97c3371f55a1'
down_revision = '3ca42aafcf2e'
branch_labels = None
depends_on = None

TAKINGS = ["status", "final_at", "till_id", "cashier_id", "amount_kes"]


def _concurrently() -> dict:
    return {"postgresql_concurrently": True} if op.get_bind().dialect.name == "postgresql" else {}


def upgrade():
    with op.get_context().autocommit_block():
        op.create_index(
            "ix_payments_created_at_id",
            "payments",
            ["created_at", "id"],
            postgresql_include=["status", "till_id", "cashier_id", "result_code"],
            **_concurrently(),
        )
        op.create_index("ix_payments_status_final_at", "payments", TAKINGS, **_concurrently())
        # (created_at, id) serves everything (created_at) did.
        op.drop_index("ix_payments_created_at", table_name="payments", **_concurrently())


def downgrade():
    with op.get_context().autocommit_block():
        op.create_index("ix_payments_created_at", "payments", ["created_at"], **_concurrently())
        op.drop_index("ix_payments_status_final_at", table_name="payments", **_concurrently())
        op.drop_index("ix_payments_created_at_id", table_name="payments", **_concurrently())
