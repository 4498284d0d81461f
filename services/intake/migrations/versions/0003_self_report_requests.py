"""self-report requests: questionnaires sent to patients by link

Revision ID: 0003
Revises: 0002
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'self_report_requests',
        sa.Column('request_id', sa.String(length=36), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('patient_number', sa.Integer(), nullable=False),
        sa.Column('questionnaire', sa.String(length=10), nullable=False),
        sa.Column('channel', sa.String(length=10), nullable=False),
        sa.Column('requested_by', sa.String(length=120), nullable=True),
        sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('response_id', sa.String(length=36), nullable=True),
        sa.ForeignKeyConstraint(['patient_number'], ['patients.number']),
        sa.PrimaryKeyConstraint('request_id'),
        sa.UniqueConstraint('token_hash'),
    )
    op.create_index(op.f('ix_self_report_requests_patient_number'), 'self_report_requests', ['patient_number'])


def downgrade():
    op.drop_index(op.f('ix_self_report_requests_patient_number'), table_name='self_report_requests')
    op.drop_table('self_report_requests')
