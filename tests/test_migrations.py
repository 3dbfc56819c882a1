"""The schema comes from the migrations, and the migrations match the models — on both databases."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask_migrate import Migrate

from extensions import db


def _not_the_queue(obj, name, type_, reflected, compare_to):
    """Huey's queue tables (PostgreSQL) are made by a migration but are none of the models'."""
    table = obj if type_ == "table" else getattr(obj, "table", None)
    return not (table is not None and str(table.name).startswith("job_queue_"))


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
        context = MigrationContext.configure(connection, opts={"compare_type": True,
                                                               "include_object": _not_the_queue})
        differences = compare_metadata(context, db.metadata)
    assert differences == []
    # …and would notice one: a model column the migrations never created.
    from sqlalchemy import Column, Integer, MetaData, Table

    extra = MetaData()
    for table in db.metadata.tables.values():
        table.to_metadata(extra)
    Table("customer", extra, Column("not_migrated", Integer), extend_existing=True)
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True,
                                                               "include_object": _not_the_queue})
        assert [d[0] for d in compare_metadata(context, extra)] == ["add_column"]


def test_migrate_extension_is_configured_for_sqlite_batch_mode(app):
    assert isinstance(app.extensions["migrate"].migrate, Migrate)
    assert app.extensions["migrate"].configure_args.get("render_as_batch") is True


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_upgrading_an_existing_registry_indexes_its_names_for_duplicates(backend, tmp_path, request):
    """Customers and contacts written before the name pairs existed are found by the new lookups
    once the migration ran: it backfills their pair and whole-name tokens and the vocabulary."""
    from datetime import datetime

    from flask_migrate import upgrade
    from sqlalchemy import insert, select

    from models import Contact, ContactSearchToken, Customer, CustomerSearchToken, CustomerStatus, NameWord
    from services.duplicates import find_duplicates, make_probe
    from tests.conftest import make_app, scratch_database_url

    url = scratch_database_url(backend, tmp_path, request, "upgrade")
    app = make_app(url)
    with app.app_context():
        upgrade(revision="811f4d44e510")
        now = datetime(2026, 1, 1)
        status = db.session.execute(insert(CustomerStatus.__table__).values(
            name="Active", is_default=True, is_active=True)).inserted_primary_key[0]
        stamps = {"created_at": now, "updated_at": now, "version": 1}
        db.session.execute(insert(Customer.__table__).values(  # rows as the old code wrote them
            id=1, kind="company", company_name="Tatra Logistics a.s.", display_name="Tatra Logistics a.s.",
            sort_name="tatra logistics a.s.", status_id=status, **stamps))
        db.session.execute(insert(Contact.__table__).values(
            id=1, customer_id=1, first_name="Jana", last_name="Horváthová", display_name="Jana Horváthová",
            sort_name="horvathova jana", is_main=True, is_active=True, **stamps))
        db.session.commit()
        upgrade()
        assert "~tatra logistics" in db.session.scalars(select(CustomerSearchToken.token)).all()
        assert "=horvathova jana" in db.session.scalars(select(ContactSearchToken.token)).all()
        assert {"tatra", "logistics", "jana", "horvathova"} <= set(db.session.scalars(select(NameWord.word)))
        found = find_duplicates(db.session, None, make_probe(kind="company", name="Tarta Logistics"))
        assert [c.label for c in found] == ["Tatra Logistics a.s."]
        found = find_duplicates(db.session, None, make_probe(name="jana horv", partial=True))
        assert [c.label for c in found] == ["Jana Horváthová"]
        db.session.remove()
        db.engine.dispose()


@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index")
def test_upgrading_a_sqlite_database_with_data_keeps_every_row_and_reference(tmp_path):
    """Batch mode re-creates a SQLite table to alter it; with foreign keys on, dropping the old
    table would run the ON DELETE rules of every row referring to it (contacts deleted, authors
    unlinked). Down to an old revision and up again over real rows: nothing is lost."""
    from flask_migrate import downgrade, upgrade
    from sqlalchemy import func, select

    from models import Contact, Customer, Operator
    from models.enums import CustomerKind, OperatorRole
    from services.customers import SaveOptions, create_customer
    from services.operators import create_operator
    from services.reference_data import ensure_reference_data
    from services.transactions import unit_of_work
    from tests.conftest import PASSWORD, make_app

    url = f"sqlite:///{tmp_path / 'upgrade.db'}"
    app = make_app(url)
    with app.app_context():
        upgrade()
        with unit_of_work(db.session):
            ensure_reference_data(db.session)
            author = create_operator(db.session, email="author@example.sk", password=PASSWORD, first_name="A",
                                     last_name="B", role=OperatorRole.OPERATOR)
            create_customer(db.session, author, SaveOptions("SK"), kind=CustomerKind.COMPANY,
                            company_name="Zachovaná s.r.o.", confirm_duplicate=True,
                            contacts=[{"first_name": "Jana", "last_name": "Kontaktná",
                                       "email": "jana@zachovana.sk", "is_main": True}])
        db.session.remove()
        downgrade(revision="e1f2a3b4c5d6")  # before the versions (operator, request) and everything after
        upgrade()
        db.session.remove()
        customer = db.session.scalar(select(Customer))
        assert customer is not None and customer.created_by_id is not None
        assert db.session.scalar(select(func.count(Contact.id))) == 1
        assert db.session.scalar(select(func.count(Operator.id))) == 1
        assert db.session.execute(db.text("PRAGMA foreign_keys")).scalar() == 1
        db.engine.dispose()
