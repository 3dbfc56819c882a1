"""The schema comes from the migrations, and the migrations match the models — on both databases."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask_migrate import Migrate

from extensions import db


def test_one_head(app):
    config = app.extensions["migrate"].migrate.get_config(app.extensions["migrate"].directory)
    assert len(ScriptDirectory.from_config(config).get_heads()) == 1


# SQLite's reflection cannot read the lower(email) expression indexes back; the migrations create
# them, and PostgreSQL compares them for real.
@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index")
@pytest.mark.filterwarnings("ignore:autogenerate skipping metadata-specified expression-based index")
def test_migrated_database_matches_the_models(app):
    """Autogenerate against the migrated database finds nothing to do."""
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, db.metadata)
    assert differences == []
    # …and would notice one: a model column the migrations never created.
    from sqlalchemy import Column, Integer, MetaData, Table

    extra = MetaData()
    for table in db.metadata.tables.values():
        table.to_metadata(extra)
    Table("customer", extra, Column("not_migrated", Integer), extend_existing=True)
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert [d[0] for d in compare_metadata(context, extra)] == ["add_column"]


def test_migrate_extension_is_configured_for_sqlite_batch_mode(app):
    assert isinstance(app.extensions["migrate"].migrate, Migrate)
    assert app.extensions["migrate"].configure_args.get("render_as_batch") is True
