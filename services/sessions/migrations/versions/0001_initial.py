"""plans, scheduling, session records, REMS forms, eligibility read model

Revision ID: 0001
Revises: 
Create Date: 2026-11-25 18:48:57.738881
"""
from alembic import op
import sqlalchemy as sa

from common.migrations import create_plumbing_tables, drop_plumbing_tables


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('idempotent_requests',
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('operation', sa.String(length=60), nullable=False),
    sa.Column('result', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    op.create_table('patient_eligibility',
    sa.Column('patient_id', sa.String(length=36), nullable=False),
    sa.Column('mrn', sa.String(length=20), nullable=True),
    sa.Column('given_name', sa.String(length=100), nullable=True),
    sa.Column('family_name', sa.String(length=100), nullable=True),
    sa.Column('time_zone', sa.String(length=64), nullable=True),
    sa.Column('details_as_of', sa.DateTime(timezone=True), nullable=True),
    sa.Column('intake_status', sa.String(length=20), nullable=False),
    sa.Column('intake_as_of', sa.DateTime(timezone=True), nullable=True),
    sa.Column('weight_kg', sa.Numeric(precision=5, scale=1, asdecimal=False), nullable=True),
    sa.Column('baseline_phq9', sa.Integer(), nullable=True),
    sa.Column('treatment_consent', sa.String(length=20), nullable=False),
    sa.Column('consent_as_of', sa.DateTime(timezone=True), nullable=True),
    sa.Column('rems_enrollment_id', sa.String(length=60), nullable=True),
    sa.Column('rems_enrolled_at', sa.Date(), nullable=True),
    sa.PrimaryKeyConstraint('patient_id')
    )
    op.create_table('resources',
    sa.Column('resource_id', sa.String(length=36), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('resource_id'),
    sa.UniqueConstraint('kind', 'name')
    )
    op.create_table('treatment_plans',
    sa.Column('plan_id', sa.String(length=36), nullable=False),
    sa.Column('patient_id', sa.String(length=36), nullable=False),
    sa.Column('route', sa.String(length=30), nullable=False),
    sa.Column('drug', sa.String(length=20), nullable=False),
    sa.Column('indication', sa.String(length=60), nullable=False),
    sa.Column('mg_per_kg', sa.Numeric(precision=4, scale=2, asdecimal=False), nullable=True),
    sa.Column('fixed_dose_mg', sa.Numeric(precision=6, scale=1, asdecimal=False), nullable=True),
    sa.Column('max_dose_mg', sa.Numeric(precision=6, scale=1, asdecimal=False), nullable=False),
    sa.Column('induction_sessions', sa.Integer(), nullable=False),
    sa.Column('min_hours_apart', sa.Integer(), nullable=False),
    sa.Column('maintenance_interval_days', sa.Integer(), nullable=True),
    sa.Column('baseline_phq9', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('course_completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_by', sa.String(length=160), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.String(length=160), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('plan_id')
    )
    with op.batch_alter_table('treatment_plans', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_treatment_plans_patient_id'), ['patient_id'], unique=False)

    op.create_table('appointments',
    sa.Column('appointment_id', sa.String(length=36), nullable=False),
    sa.Column('plan_id', sa.String(length=36), nullable=False),
    sa.Column('patient_id', sa.String(length=36), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('sequence', sa.Integer(), nullable=False),
    sa.Column('route', sa.String(length=30), nullable=False),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ends_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('chair_id', sa.String(length=36), nullable=False),
    sa.Column('clinician_id', sa.String(length=36), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('cancelled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('late_cancellation', sa.Boolean(), nullable=True),
    sa.Column('cancelled_by_role', sa.String(length=20), nullable=True),
    sa.Column('booked_by', sa.String(length=160), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['chair_id'], ['resources.resource_id'], ),
    sa.ForeignKeyConstraint(['clinician_id'], ['resources.resource_id'], ),
    sa.ForeignKeyConstraint(['plan_id'], ['treatment_plans.plan_id'], ),
    sa.PrimaryKeyConstraint('appointment_id')
    )
    with op.batch_alter_table('appointments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_appointments_patient_id'), ['patient_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_appointments_plan_id'), ['plan_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_appointments_starts_at'), ['starts_at'], unique=False)

    op.create_table('phq9_scores',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('plan_id', sa.String(length=36), nullable=False),
    sa.Column('session_id', sa.String(length=36), nullable=True),
    sa.Column('total', sa.Integer(), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['plan_id'], ['treatment_plans.plan_id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('phq9_scores', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_phq9_scores_plan_id'), ['plan_id'], unique=False)

    op.create_table('resource_bookings',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('resource_kind', sa.String(length=20), nullable=False),
    sa.Column('resource_id', sa.String(length=36), nullable=False),
    sa.Column('slot_start', sa.DateTime(timezone=True), nullable=False),
    sa.Column('appointment_id', sa.String(length=36), nullable=False),
    sa.ForeignKeyConstraint(['appointment_id'], ['appointments.appointment_id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('resource_kind', 'resource_id', 'slot_start', name='uq_resource_bookings_slot')
    )
    with op.batch_alter_table('resource_bookings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_resource_bookings_appointment_id'), ['appointment_id'], unique=False)

    op.create_table('session_records',
    sa.Column('session_id', sa.String(length=36), nullable=False),
    sa.Column('appointment_id', sa.String(length=36), nullable=False),
    sa.Column('plan_id', sa.String(length=36), nullable=False),
    sa.Column('patient_id', sa.String(length=36), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('checked_in_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('fasting_confirmed', sa.Boolean(), nullable=False),
    sa.Column('escort_confirmed', sa.Boolean(), nullable=False),
    sa.Column('weight_kg', sa.Numeric(precision=5, scale=1, asdecimal=False), nullable=True),
    sa.Column('baseline_vitals', sa.JSON(), nullable=True),
    sa.Column('pre_phq9', sa.Integer(), nullable=True),
    sa.Column('mood_score', sa.Integer(), nullable=True),
    sa.Column('route', sa.String(length=30), nullable=False),
    sa.Column('drug', sa.String(length=20), nullable=False),
    sa.Column('dose_mg', sa.Numeric(precision=6, scale=1, asdecimal=False), nullable=True),
    sa.Column('lot_number', sa.String(length=40), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('dissociation_scale', sa.String(length=10), nullable=True),
    sa.Column('dissociation_score', sa.Integer(), nullable=True),
    sa.Column('sedation_checked', sa.Boolean(), nullable=False),
    sa.Column('discharged_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('discharge', sa.JSON(), nullable=True),
    sa.Column('aborted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('abort_reason_code', sa.String(length=40), nullable=True),
    sa.Column('abort_note', sa.Text(), nullable=True),
    sa.Column('signed_by', sa.String(length=160), nullable=True),
    sa.Column('signed_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['appointment_id'], ['appointments.appointment_id'], ),
    sa.ForeignKeyConstraint(['plan_id'], ['treatment_plans.plan_id'], ),
    sa.PrimaryKeyConstraint('session_id'),
    sa.UniqueConstraint('appointment_id')
    )
    with op.batch_alter_table('session_records', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_session_records_patient_id'), ['patient_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_session_records_plan_id'), ['plan_id'], unique=False)

    op.create_table('addenda',
    sa.Column('addendum_id', sa.String(length=36), nullable=False),
    sa.Column('session_id', sa.String(length=36), nullable=False),
    sa.Column('author', sa.String(length=160), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('written_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['session_id'], ['session_records.session_id'], ),
    sa.PrimaryKeyConstraint('addendum_id')
    )
    with op.batch_alter_table('addenda', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_addenda_session_id'), ['session_id'], unique=False)

    op.create_table('monitoring_forms',
    sa.Column('form_id', sa.String(length=36), nullable=False),
    sa.Column('session_id', sa.String(length=36), nullable=False),
    sa.Column('patient_id', sa.String(length=36), nullable=False),
    sa.Column('session_date', sa.Date(), nullable=False),
    sa.Column('due_on', sa.Date(), nullable=False),
    sa.Column('content', sa.JSON(), nullable=False),
    sa.Column('submitted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('submitted_by', sa.String(length=160), nullable=True),
    sa.Column('confirmation', sa.String(length=60), nullable=True),
    sa.ForeignKeyConstraint(['session_id'], ['session_records.session_id'], ),
    sa.PrimaryKeyConstraint('form_id'),
    sa.UniqueConstraint('session_id')
    )
    with op.batch_alter_table('monitoring_forms', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_monitoring_forms_due_on'), ['due_on'], unique=False)
        batch_op.create_index(batch_op.f('ix_monitoring_forms_patient_id'), ['patient_id'], unique=False)

    op.create_table('side_effects',
    sa.Column('side_effect_id', sa.String(length=36), nullable=False),
    sa.Column('session_id', sa.String(length=36), nullable=False),
    sa.Column('effect', sa.String(length=40), nullable=False),
    sa.Column('severity', sa.String(length=10), nullable=False),
    sa.Column('serious', sa.Boolean(), nullable=False),
    sa.Column('intervention', sa.Text(), nullable=True),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('recorded_by', sa.String(length=160), nullable=True),
    sa.ForeignKeyConstraint(['session_id'], ['session_records.session_id'], ),
    sa.PrimaryKeyConstraint('side_effect_id')
    )
    with op.batch_alter_table('side_effects', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_side_effects_session_id'), ['session_id'], unique=False)

    op.create_table('vitals_readings',
    sa.Column('reading_id', sa.String(length=36), nullable=False),
    sa.Column('session_id', sa.String(length=36), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('systolic', sa.Integer(), nullable=True),
    sa.Column('diastolic', sa.Integer(), nullable=True),
    sa.Column('heart_rate', sa.Integer(), nullable=True),
    sa.Column('spo2', sa.Integer(), nullable=True),
    sa.Column('respiratory_rate', sa.Integer(), nullable=True),
    sa.Column('alerts', sa.JSON(), nullable=False),
    sa.Column('recorded_by', sa.String(length=160), nullable=True),
    sa.ForeignKeyConstraint(['session_id'], ['session_records.session_id'], ),
    sa.PrimaryKeyConstraint('reading_id')
    )
    with op.batch_alter_table('vitals_readings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_vitals_readings_session_id'), ['session_id'], unique=False)

    create_plumbing_tables(op)


def downgrade():
    drop_plumbing_tables(op)
    with op.batch_alter_table('vitals_readings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_vitals_readings_session_id'))

    op.drop_table('vitals_readings')
    with op.batch_alter_table('side_effects', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_side_effects_session_id'))

    op.drop_table('side_effects')
    with op.batch_alter_table('monitoring_forms', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_monitoring_forms_patient_id'))
        batch_op.drop_index(batch_op.f('ix_monitoring_forms_due_on'))

    op.drop_table('monitoring_forms')
    with op.batch_alter_table('addenda', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_addenda_session_id'))

    op.drop_table('addenda')
    with op.batch_alter_table('session_records', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_session_records_plan_id'))
        batch_op.drop_index(batch_op.f('ix_session_records_patient_id'))

    op.drop_table('session_records')
    with op.batch_alter_table('resource_bookings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_resource_bookings_appointment_id'))

    op.drop_table('resource_bookings')
    with op.batch_alter_table('phq9_scores', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_phq9_scores_plan_id'))

    op.drop_table('phq9_scores')
    with op.batch_alter_table('appointments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_appointments_starts_at'))
        batch_op.drop_index(batch_op.f('ix_appointments_plan_id'))
        batch_op.drop_index(batch_op.f('ix_appointments_patient_id'))

    op.drop_table('appointments')
    with op.batch_alter_table('treatment_plans', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_treatment_plans_patient_id'))

    op.drop_table('treatment_plans')
    op.drop_table('resources')
    op.drop_table('patient_eligibility')
    op.drop_table('idempotent_requests')
