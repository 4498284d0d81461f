"""a plan may cap the dose per kg of the weight at check-in

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
    with op.batch_alter_table('treatment_plans', schema=None) as batch_op:
        batch_op.add_column(sa.Column('max_mg_per_kg', sa.Numeric(precision=4, scale=2, asdecimal=False),
                                      nullable=True))


def downgrade():
    with op.batch_alter_table('treatment_plans', schema=None) as batch_op:
        batch_op.drop_column('max_mg_per_kg')
