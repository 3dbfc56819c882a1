"""The unit of work on both real databases: the door's transaction commits once, joins nested
units, keeps a failed savepoint to itself, and turns a database refusal into a field message."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, text

from extensions import db
from models import Customer, SlaLevel
from models.enums import CustomerKind
from services.customers import default_status
from services.errors import ValidationFailed
from services.transactions import CONFLICT, flush, unit_of_work


def names(session) -> set[str]:
    session.expire_all()
    return set(session.scalars(select(SlaLevel.name)))


class Boom(Exception):
    pass


def test_the_outermost_unit_commits_and_a_nested_one_only_joins(app):
    session = db.session
    with unit_of_work(session):
        session.add(SlaLevel(name="Gold"))
        with unit_of_work(session):
            session.add(SlaLevel(name="Silver"))
        # the nested unit ended without committing: another connection does not see it yet
        with db.engine.connect() as other:
            assert other.scalar(text("SELECT count(*) FROM sla_level")) == 0
    assert names(session) == {"Gold", "Silver"}

    with pytest.raises(Boom):
        with unit_of_work(session):
            session.add(SlaLevel(name="Bronze"))
            with unit_of_work(session):
                session.add(SlaLevel(name="Platinum"))
            raise Boom
    assert names(session) == {"Gold", "Silver"}


def test_a_released_savepoint_is_still_undone_by_the_outer_rollback(app):
    """pysqlite begins no transaction before a SAVEPOINT: without care the first savepoint is the
    transaction and releasing it commits — a dry run would write."""
    session = db.session
    with pytest.raises(Boom):
        with unit_of_work(session):
            session.scalar(select(func.count()).select_from(SlaLevel))  # reads only so far
            with unit_of_work(session, savepoint=True):
                session.add(SlaLevel(name="Gold"))
            raise Boom
    assert names(session) == set()


def test_a_failed_savepoint_drops_alone_and_the_rest_commits(app):
    session = db.session
    with unit_of_work(session):
        session.add(SlaLevel(name="Gold"))
        flush(session)
        for name in ("Silver", "Gold", "Bronze"):  # the second one breaks the unique name
            try:
                with unit_of_work(session, savepoint=True):
                    session.add(SlaLevel(name=name))
            except ValidationFailed:
                pass
    assert names(session) == {"Gold", "Silver", "Bronze"}


def test_a_race_past_the_checks_becomes_the_fields_message(app, new_customer):
    new_customer(kind=CustomerKind.COMPANY, company_name="Prvá", registration_number="50111222")
    session = db.session
    with pytest.raises(ValidationFailed) as refused:
        with unit_of_work(session):
            twin = Customer(kind=CustomerKind.COMPANY, company_name="Druhá", registration_number="50111222",
                            status=default_status(session))
            session.add(twin)  # straight to the database, as a concurrent save would arrive
            flush(session)
    expected = ["Another customer has this company ID."] if db.engine.dialect.name == "postgresql" \
        else [CONFLICT]  # sqlite3 does not name the violated constraint
    assert list(refused.value.errors.values()) == [expected]
    assert session.scalar(select(func.count()).select_from(Customer)) == 1


def test_text_longer_than_its_column_is_refused_before_the_database_sees_it(app):
    session = db.session
    with pytest.raises(ValidationFailed) as refused:
        with unit_of_work(session):
            session.add(SlaLevel(name="x" * 121))
    assert "At most 120 characters" in str(refused.value)
    assert names(session) == set()
