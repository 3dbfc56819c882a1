"""directory values: empty directory values keep or clear local ones; AD's field lengths

A directory source says what an attribute the directory has no value for does to a field that
has one (directory_source.empty_values): 'keep' (the default, for existing sources too) leaves
what an operator typed, 'clear' empties it. Title, Location ID and site names take as many
characters as Active Directory allows (title and physicalDeliveryOfficeName: 128), so an import
stores them whole.

Revision ID: f8a9b0c1d2e3
Revises: e7f8a9b0c1d2
Create Date: 2026-12-01 04:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = 'f8a9b0c1d2e3'
down_revision = 'e7f8a9b0c1d2'
branch_labels = None
depends_on = None

# table → (column, length before, length now, nullable)
WIDER = {
    'customer': [('title', 120, 128, True), ('location_code', 60, 128, True)],
    'contact': [('title', 120, 128, True)],
    'site': [('name', 120, 128, False)],
}
AUTOINCREMENT = {'customer', 'contact'}  # SQLite: ids never reused (kept when the table is copied)
# SQLite cannot reflect expression indexes: batch mode, which copies a table to alter it there,
# would drop them silently (see b7c1d2e3f4a5), so they are dropped first and made again.
EXPRESSION_INDEXES = [('ix_customer_email_lower', 'customer', 'email'),
                      ('ix_customer_secondary_email_lower', 'customer', 'secondary_email'),
                      ('ix_contact_email_lower', 'contact', 'email')]
EMPTY_VALUES_CHECK = "empty_values IN ('keep', 'clear')"


def _sqlite() -> bool:
    return op.get_bind().dialect.name == 'sqlite'


def _resize(wider: bool) -> None:
    """Every column of WIDER to its new length (`wider`) or back. PostgreSQL alters the columns
    in place (a longer VARCHAR rewrites nothing); SQLite copies the tables (batch mode)."""
    sqlite = _sqlite()
    if sqlite:
        for name, table, _column in EXPRESSION_INDEXES:
            op.drop_index(name, table_name=table)
    for table, columns in WIDER.items():
        if not wider:  # back to the old lengths: what does not fit is cut
            for column, before, _now, _nullable in columns:
                op.execute(sa.text(f'UPDATE {table} SET {column} = substr({column}, 1, {before}) '
                                   f'WHERE length({column}) > {before}'))
        kwargs = {'table_kwargs': {'sqlite_autoincrement': True}} if table in AUTOINCREMENT else {}
        with op.batch_alter_table(table, schema=None, **kwargs) as batch_op:
            for column, before, now, nullable in columns:
                old, new = (before, now) if wider else (now, before)
                batch_op.alter_column(column, existing_type=sa.String(length=old),
                                      type_=sa.String(length=new), existing_nullable=nullable)
    if sqlite:
        for name, table, column in EXPRESSION_INDEXES:
            op.create_index(name, table, [sa.text(f'lower({column})')], unique=False)


def upgrade():
    _resize(wider=True)
    if _sqlite():  # no copy of directory_source: a plain ADD COLUMN with its check inline
        op.execute("ALTER TABLE directory_source ADD COLUMN empty_values VARCHAR(5) DEFAULT 'keep' NOT NULL "
                   f"CONSTRAINT ck_directory_source_empty_values CHECK ({EMPTY_VALUES_CHECK})")
    else:
        op.add_column('directory_source', sa.Column('empty_values', sa.String(length=5),
                                                    server_default='keep', nullable=False))
        op.create_check_constraint(op.f('ck_directory_source_empty_values'), 'directory_source',
                                   EMPTY_VALUES_CHECK)


def downgrade():
    if _sqlite() and _inline_check():  # as added above: a plain DROP COLUMN, no copy of the table
        op.execute('ALTER TABLE directory_source DROP COLUMN empty_values')
    else:  # PostgreSQL; SQLite after a later migration copied the table (its check is the table's then)
        with op.batch_alter_table('directory_source', schema=None) as batch_op:
            batch_op.drop_constraint(op.f('ck_directory_source_empty_values'), type_='check')
            batch_op.drop_column('empty_values')
    _resize(wider=False)


def _inline_check() -> bool:
    """Whether SQLite holds empty_values's check on the column itself, as upgrade() adds it."""
    sql = op.get_bind().exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'directory_source'").scalar() or ''
    return "NOT NULL CONSTRAINT ck_directory_source_empty_values CHECK" in sql
