"""name pairs in the search index and a vocabulary of name words, for duplicate lookups

Revision ID: a1b2c3d4e5f6
Revises: 811f4d44e510
Create Date: 2026-11-30 20:00:00

"""
import sqlalchemy as sa
from alembic import op

from models.name_vocabulary import add_words
from models.names import name_words, person_name
from models.search_index import name_tokens

revision = 'a1b2c3d4e5f6'
down_revision = '811f4d44e510'
branch_labels = None
depends_on = None

BATCH = 5000


def _word_column(name):
    byte_order = sa.String(length=64).with_variant(sa.String(length=64, collation='C'), 'postgresql')
    return sa.Column(name, byte_order, nullable=False)


def _backfill(connection, query, token_table, owner, words_of):
    """Pair tokens and vocabulary for the rows that exist, in batches (keyset on id)."""
    last = 0
    while True:
        rows = connection.execute(sa.text(query), {"last": last, "batch": BATCH}).mappings().all()
        if not rows:
            return
        tokens, vocabulary = [], set()
        for row in rows:
            words = words_of(row)
            vocabulary.update(words)
            tokens += [{"token": t, owner: row["id"]} for t in sorted(name_tokens(words))]
        if tokens:
            insert = f"INSERT INTO {token_table} (token, {owner}) VALUES (:token, :{owner})"
            connection.execute(sa.text(insert), tokens)
        add_words(connection, vocabulary)
        last = rows[-1]["id"]


def upgrade():
    op.create_table('name_word', _word_column('word'),
                    sa.PrimaryKeyConstraint('word', name=op.f('pk_name_word')))
    op.create_table('name_word_variant', _word_column('variant'), _word_column('word'),
                    sa.PrimaryKeyConstraint('variant', 'word', name=op.f('pk_name_word_variant')))
    connection = op.get_bind()
    _backfill(connection, "SELECT id, kind, company_name, first_name, middle_name, last_name FROM customer "
                          "WHERE id > :last ORDER BY id LIMIT :batch", "customer_search_token", "customer_id",
              lambda r: name_words(r["company_name"], company=True) if r["kind"] == "company" else
              name_words(person_name(r["first_name"], r["middle_name"], r["last_name"]), company=False))
    _backfill(connection, "SELECT id, first_name, last_name FROM contact WHERE id > :last ORDER BY id "
                          "LIMIT :batch", "contact_search_token", "contact_id",
              lambda r: name_words(person_name(r["first_name"], r["last_name"]), company=False))


def downgrade():
    for table in ("customer_search_token", "contact_search_token"):
        op.execute(f"DELETE FROM {table} WHERE token >= '~' OR token LIKE '=%'")
    op.drop_table('name_word_variant')
    op.drop_table('name_word')
