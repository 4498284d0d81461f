"""two-way SMS: inbound texts (the replay store, without their words) and
recipients found by phone number

Revision ID: 0003_two_way_sms
Revises: 0002
Create Date: 2026-11-27
"""
from alembic import op
import sqlalchemy as sa


revision = '0003_two_way_sms'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'inbound_sms',
        sa.Column('inbound_id', sa.String(length=36), nullable=False),
        sa.Column('provider_message_id', sa.String(length=100), nullable=False),
        sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('keyword', sa.String(length=10), nullable=False),
        sa.Column('outcome', sa.String(length=40), nullable=False),
        sa.Column('patient_ids', sa.JSON(), nullable=False),
        sa.Column('appointment_id', sa.String(length=36), nullable=True),
        sa.Column('sender_hint', sa.String(length=8), nullable=True),
        sa.PrimaryKeyConstraint('inbound_id'),
        sa.UniqueConstraint('provider_message_id'),
    )
    with op.batch_alter_table('recipients', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_recipients_phone'), ['phone'], unique=False)


def downgrade():
    with op.batch_alter_table('recipients', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_recipients_phone'))
    op.drop_table('inbound_sms')
