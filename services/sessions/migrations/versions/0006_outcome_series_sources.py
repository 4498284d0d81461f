"""the outcome series holds PHQ-9 and GAD-7, each marked staff or self_report

phq9_scores becomes outcome_scores with an instrument and a source. Every
existing row was a PHQ-9 and is backfilled as taken by staff: the
self-reported ones of the past were stored unmarked, so nothing tells them
apart now. The check-in checklist may carry a pre-session GAD-7 too.

Revision ID: 0006_outcome_series_sources
Revises: 0005_front_desk_tasks
"""
from alembic import op
import sqlalchemy as sa


revision = '0006_outcome_series_sources'
down_revision = '0005_front_desk_tasks'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('phq9_scores', schema=None) as batch_op:
        batch_op.drop_index('ix_phq9_scores_plan_id')
    op.rename_table('phq9_scores', 'outcome_scores')
    with op.batch_alter_table('outcome_scores', schema=None) as batch_op:
        batch_op.add_column(sa.Column('instrument', sa.String(length=10), nullable=False, server_default='phq9'))
        batch_op.add_column(sa.Column('source', sa.String(length=20), nullable=False, server_default='staff'))
        batch_op.create_index(batch_op.f('ix_outcome_scores_plan_id'), ['plan_id'], unique=False)
    # The defaults were only for the backfill: every new row names both.
    with op.batch_alter_table('outcome_scores', schema=None) as batch_op:
        batch_op.alter_column('instrument', server_default=None)
        batch_op.alter_column('source', server_default=None)
    with op.batch_alter_table('session_records', schema=None) as batch_op:
        batch_op.add_column(sa.Column('pre_gad7', sa.Integer(), nullable=True))


def downgrade():
    with op.batch_alter_table('session_records', schema=None) as batch_op:
        batch_op.drop_column('pre_gad7')
    # The series goes back to PHQ-9 alone: GAD-7 rows have no place there.
    op.execute("DELETE FROM outcome_scores WHERE instrument <> 'phq9'")
    with op.batch_alter_table('outcome_scores', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outcome_scores_plan_id'))
        batch_op.drop_column('source')
        batch_op.drop_column('instrument')
    op.rename_table('outcome_scores', 'phq9_scores')
    with op.batch_alter_table('phq9_scores', schema=None) as batch_op:
        batch_op.create_index('ix_phq9_scores_plan_id', ['plan_id'], unique=False)
