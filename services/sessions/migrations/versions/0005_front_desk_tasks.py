"""front-desk retention tasks, pre-visit replies, and what the retention
rules and course report need on appointments and plans

Revision ID: 0005_front_desk_tasks
Revises: 0004
"""
from alembic import op
import sqlalchemy as sa


revision = '0005_front_desk_tasks'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('front_desk_tasks',
    sa.Column('task_id', sa.String(length=36), nullable=False),
    sa.Column('kind', sa.String(length=30), nullable=False),
    sa.Column('patient_id', sa.String(length=36), nullable=False),
    sa.Column('plan_id', sa.String(length=36), nullable=True),
    sa.Column('appointment_id', sa.String(length=36), nullable=True),
    sa.Column('reason', sa.String(length=200), nullable=False),
    sa.Column('state', sa.String(length=10), nullable=False),
    sa.Column('open_key', sa.String(length=120), nullable=True),
    sa.Column('opened_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('closed_by', sa.String(length=160), nullable=True),
    sa.Column('close_outcome', sa.String(length=10), nullable=True),
    sa.Column('close_reason', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('task_id'),
    sa.UniqueConstraint('open_key')
    )
    with op.batch_alter_table('front_desk_tasks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_front_desk_tasks_kind'), ['kind'], unique=False)
        batch_op.create_index(batch_op.f('ix_front_desk_tasks_opened_at'), ['opened_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_front_desk_tasks_patient_id'), ['patient_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_front_desk_tasks_state'), ['state'], unique=False)

    op.create_table('previsit_replies',
    sa.Column('reply_id', sa.String(length=64), nullable=False),
    sa.Column('appointment_id', sa.String(length=36), nullable=False),
    sa.Column('answer', sa.String(length=20), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('reply_id')
    )
    with op.batch_alter_table('previsit_replies', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_previsit_replies_appointment_id'), ['appointment_id'], unique=False)

    with op.batch_alter_table('appointments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('previsit_confirmed_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('retention_checked_at', sa.DateTime(timezone=True), nullable=True))

    with op.batch_alter_table('treatment_plans', schema=None) as batch_op:
        batch_op.add_column(sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table('treatment_plans', schema=None) as batch_op:
        batch_op.drop_column('closed_at')
    with op.batch_alter_table('appointments', schema=None) as batch_op:
        batch_op.drop_column('retention_checked_at')
        batch_op.drop_column('previsit_confirmed_at')
    with op.batch_alter_table('previsit_replies', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_previsit_replies_appointment_id'))
    op.drop_table('previsit_replies')
    with op.batch_alter_table('front_desk_tasks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_front_desk_tasks_state'))
        batch_op.drop_index(batch_op.f('ix_front_desk_tasks_patient_id'))
        batch_op.drop_index(batch_op.f('ix_front_desk_tasks_opened_at'))
        batch_op.drop_index(batch_op.f('ix_front_desk_tasks_kind'))
    op.drop_table('front_desk_tasks')
