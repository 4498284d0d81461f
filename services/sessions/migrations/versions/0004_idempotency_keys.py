"""the shared Idempotency-Key store (common.idempotency)

Replaces this service's own idempotent_requests table, whose rows are
dropped rather than moved: they were keyed without the caller's scope (and,
in sessions, without a fingerprint), so no new-style lookup could find them,
and a key only matters for the minutes in which a client retries. Deploy it
between requests (the service is stopped while it migrates).

Revision ID: 0004
Revises: 0003
"""
from alembic import op
import sqlalchemy as sa

from common.migrations import create_idempotency_table, drop_idempotency_table


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade():
    create_idempotency_table(op)
    op.drop_table('idempotent_requests')


def downgrade():
    op.create_table('idempotent_requests',
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('operation', sa.String(length=60), nullable=False),
    sa.Column('result', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    drop_idempotency_table(op)
