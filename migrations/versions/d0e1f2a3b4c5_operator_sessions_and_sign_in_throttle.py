"""operator sessions revocable on the server and sign-in throttling per account

Revision ID: d0e1f2a3b4c5
Revises: a1b2c3d4e5f6
Create Date: 2026-11-30 22:30:00

"""
import sqlalchemy as sa
from alembic import op

revision = 'd0e1f2a3b4c5'
down_revision = 'a1b2c3d4e5f6'
branch_labels = None
depends_on = None


def upgrade():
    # Existing session cookies hold only the id: after this revision they sign nobody in.
    with op.batch_alter_table('operator', schema=None) as batch_op:
        batch_op.add_column(sa.Column('session_generation', sa.Integer(), server_default='1',
                                      nullable=False))
    op.create_table(
        'sign_in_throttle',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('account', sa.String(length=254), nullable=False),
        sa.Column('address', sa.String(length=64), nullable=False),
        sa.Column('failures', sa.Integer(), server_default='0', nullable=False),
        sa.Column('window_started_at', sa.DateTime(), nullable=True),
        sa.Column('familiar_until', sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_sign_in_throttle')),
        sa.UniqueConstraint('account', 'address', name=op.f('uq_sign_in_throttle_account_address')),
    )
    op.create_index(op.f('ix_sign_in_throttle_window_started_at'), 'sign_in_throttle',
                    ['window_started_at'], unique=False)


def downgrade():
    op.drop_index(op.f('ix_sign_in_throttle_window_started_at'), table_name='sign_in_throttle')
    op.drop_table('sign_in_throttle')
    with op.batch_alter_table('operator', schema=None) as batch_op:
        batch_op.drop_column('session_generation')
