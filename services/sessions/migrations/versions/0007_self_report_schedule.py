"""a treatment plan's self-report schedule, and the forms it made due

Plans made before this revision keep a null schedule: their patients are
sent nothing new until staff set one.

Revision ID: 0007_self_report_schedule
Revises: 0006_outcome_series_sources
"""
from alembic import op
import sqlalchemy as sa


revision = '0007_self_report_schedule'
down_revision = '0006_outcome_series_sources'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('treatment_plans', schema=None) as batch_op:
        batch_op.add_column(sa.Column('self_report_schedule', sa.JSON(), nullable=True))
    op.create_table(
        'self_report_dues',
        sa.Column('due_id', sa.String(length=120), nullable=False),
        sa.Column('plan_id', sa.String(length=36), nullable=False),
        sa.Column('patient_id', sa.String(length=36), nullable=False),
        sa.Column('questionnaire', sa.String(length=10), nullable=False),
        sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('announced_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['plan_id'], ['treatment_plans.plan_id']),
        sa.PrimaryKeyConstraint('due_id'),
    )
    with op.batch_alter_table('self_report_dues', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_self_report_dues_plan_id'), ['plan_id'], unique=False)


def downgrade():
    with op.batch_alter_table('self_report_dues', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_self_report_dues_plan_id'))
    op.drop_table('self_report_dues')
    with op.batch_alter_table('treatment_plans', schema=None) as batch_op:
        batch_op.drop_column('self_report_schedule')
