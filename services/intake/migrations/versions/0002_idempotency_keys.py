"""the shared Idempotency-Key store (common.idempotency)

Intake had no store of its own.

Revision ID: 0002
Revises: 0001
"""
from alembic import op

from common.migrations import create_idempotency_table, drop_idempotency_table


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade():
    create_idempotency_table(op)


def downgrade():
    drop_idempotency_table(op)
