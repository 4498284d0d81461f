"""record access audit trail

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('record_access',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('patient_id', sa.String(length=36), nullable=False),
    sa.Column('actor', sa.String(length=160), nullable=False),
    sa.Column('action', sa.String(length=40), nullable=False),
    sa.Column('correlation_id', sa.String(length=64), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('record_access', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_record_access_patient_id'), ['patient_id'], unique=False)



def downgrade():
    with op.batch_alter_table('record_access', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_record_access_patient_id'))

    op.drop_table('record_access')
