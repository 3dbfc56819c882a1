"""a wizard draft makes one customer; failed sign-ins counted per address in the database

The wizard's Save claims its draft (saved_at) and remembers the customer it made (customer_id).
Failed sign-ins per address over all accounts (LOGIN_RATE_LIMIT) are counted in
sign_in_address_failures, shared by every process, instead of Flask-Limiter's per-process memory.

Revision ID: e7f8a9b0c1d2
Revises: d6e7f8a9b0c1
Create Date: 2026-12-01 01:45:00
"""
import sqlalchemy as sa
from alembic import op

revision = 'e7f8a9b0c1d2'
down_revision = 'd6e7f8a9b0c1'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('wizard_draft', schema=None) as batch_op:
        batch_op.add_column(sa.Column('saved_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('customer_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_wizard_draft_customer_id_customer'), 'customer',
                                    ['customer_id'], ['id'], ondelete='SET NULL')
    op.create_table(
        'sign_in_address_failures',
        sa.Column('address', sa.String(length=64), nullable=False),
        sa.Column('failures', sa.Integer(), server_default='0', nullable=False),
        sa.Column('window_started_at', sa.DateTime(), nullable=False),
        sa.Column('last_failure_at', sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint('address', name=op.f('pk_sign_in_address_failures')),
    )
    with op.batch_alter_table('sign_in_address_failures', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sign_in_address_failures_window_started_at'),
                              ['window_started_at'], unique=False)


def downgrade():
    with op.batch_alter_table('sign_in_address_failures', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sign_in_address_failures_window_started_at'))
    op.drop_table('sign_in_address_failures')
    with op.batch_alter_table('wizard_draft', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_wizard_draft_customer_id_customer'), type_='foreignkey')
        batch_op.drop_column('customer_id')
        batch_op.drop_column('saved_at')
