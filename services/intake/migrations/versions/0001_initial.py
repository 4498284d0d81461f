"""patients, consents, history, questionnaires, screening, decisions, audit

Revision ID: 0001
Revises: 
Create Date: 2026-11-25
"""
from alembic import op
import sqlalchemy as sa

from common.migrations import create_plumbing_tables, drop_plumbing_tables


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('patients',
    sa.Column('number', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('patient_id', sa.String(length=36), nullable=False),
    sa.Column('given_name', sa.String(length=100), nullable=False),
    sa.Column('family_name', sa.String(length=100), nullable=False),
    sa.Column('date_of_birth', sa.Date(), nullable=False),
    sa.Column('sex', sa.String(length=20), nullable=False),
    sa.Column('phone', sa.String(length=20), nullable=True),
    sa.Column('email', sa.String(length=254), nullable=True),
    sa.Column('time_zone', sa.String(length=64), nullable=False),
    sa.Column('emergency_contact', sa.JSON(), nullable=True),
    sa.Column('weight_kg', sa.Numeric(precision=5, scale=1, asdecimal=False), nullable=True),
    sa.Column('height_cm', sa.Numeric(precision=5, scale=1, asdecimal=False), nullable=True),
    sa.Column('primary_condition', sa.String(length=60), nullable=False),
    sa.Column('diagnosis_codes', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('number'),
    sa.UniqueConstraint('patient_id')
    )
    with op.batch_alter_table('patients', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_patients_date_of_birth'), ['date_of_birth'], unique=False)
        batch_op.create_index(batch_op.f('ix_patients_family_name'), ['family_name'], unique=False)

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

    op.create_table('consents',
    sa.Column('consent_id', sa.String(length=36), nullable=False),
    sa.Column('patient_number', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('given_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('method', sa.String(length=20), nullable=False),
    sa.Column('recorded_by', sa.String(length=120), nullable=True),
    sa.Column('withdrawn_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('withdrawn_by', sa.String(length=120), nullable=True),
    sa.ForeignKeyConstraint(['patient_number'], ['patients.number'], ),
    sa.PrimaryKeyConstraint('consent_id')
    )
    with op.batch_alter_table('consents', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_consents_patient_number'), ['patient_number'], unique=False)

    op.create_table('intake_cases',
    sa.Column('patient_number', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('submitted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('screening_id', sa.String(length=36), nullable=True),
    sa.Column('screening_outcome', sa.String(length=20), nullable=True),
    sa.Column('decision', sa.String(length=10), nullable=True),
    sa.Column('decided_by', sa.String(length=120), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('decision_reason', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['patient_number'], ['patients.number'], ),
    sa.PrimaryKeyConstraint('patient_number')
    )
    op.create_table('medical_histories',
    sa.Column('history_id', sa.String(length=36), nullable=False),
    sa.Column('patient_number', sa.Integer(), nullable=False),
    sa.Column('conditions', sa.JSON(), nullable=False),
    sa.Column('other_conditions', sa.Text(), nullable=True),
    sa.Column('medications', sa.JSON(), nullable=False),
    sa.Column('allergies', sa.JSON(), nullable=False),
    sa.Column('ketamine_hypersensitivity', sa.Boolean(), nullable=False),
    sa.Column('pregnant', sa.Boolean(), nullable=False),
    sa.Column('last_myocardial_infarction', sa.Date(), nullable=True),
    sa.Column('previous_ketamine_treatment', sa.Boolean(), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('recorded_by', sa.String(length=120), nullable=True),
    sa.ForeignKeyConstraint(['patient_number'], ['patients.number'], ),
    sa.PrimaryKeyConstraint('history_id')
    )
    with op.batch_alter_table('medical_histories', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_medical_histories_patient_number'), ['patient_number'], unique=False)

    op.create_table('questionnaire_responses',
    sa.Column('response_id', sa.String(length=36), nullable=False),
    sa.Column('patient_number', sa.Integer(), nullable=False),
    sa.Column('instrument', sa.String(length=10), nullable=False),
    sa.Column('answers', sa.JSON(), nullable=False),
    sa.Column('total', sa.Integer(), nullable=False),
    sa.Column('band', sa.String(length=30), nullable=False),
    sa.Column('risk_flags', sa.JSON(), nullable=False),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('recorded_by', sa.String(length=120), nullable=True),
    sa.ForeignKeyConstraint(['patient_number'], ['patients.number'], ),
    sa.PrimaryKeyConstraint('response_id')
    )
    with op.batch_alter_table('questionnaire_responses', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_questionnaire_responses_patient_number'), ['patient_number'], unique=False)

    op.create_table('screenings',
    sa.Column('screening_id', sa.String(length=36), nullable=False),
    sa.Column('patient_number', sa.Integer(), nullable=False),
    sa.Column('systolic', sa.Integer(), nullable=False),
    sa.Column('diastolic', sa.Integer(), nullable=False),
    sa.Column('outcome', sa.String(length=20), nullable=False),
    sa.Column('reasons', sa.JSON(), nullable=False),
    sa.Column('screened_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('screened_by', sa.String(length=120), nullable=True),
    sa.ForeignKeyConstraint(['patient_number'], ['patients.number'], ),
    sa.PrimaryKeyConstraint('screening_id')
    )
    with op.batch_alter_table('screenings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_screenings_patient_number'), ['patient_number'], unique=False)

    create_plumbing_tables(op)


def downgrade():
    drop_plumbing_tables(op)
    with op.batch_alter_table('screenings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_screenings_patient_number'))

    op.drop_table('screenings')
    with op.batch_alter_table('questionnaire_responses', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_questionnaire_responses_patient_number'))

    op.drop_table('questionnaire_responses')
    with op.batch_alter_table('medical_histories', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_medical_histories_patient_number'))

    op.drop_table('medical_histories')
    op.drop_table('intake_cases')
    with op.batch_alter_table('consents', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_consents_patient_number'))

    op.drop_table('consents')
    with op.batch_alter_table('record_access', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_record_access_patient_id'))

    op.drop_table('record_access')
    with op.batch_alter_table('patients', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_patients_family_name'))
        batch_op.drop_index(batch_op.f('ix_patients_date_of_birth'))

    op.drop_table('patients')
