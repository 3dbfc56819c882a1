"""The access policy (services.access) and its ownership rights, on both databases."""

import pytest
from sqlalchemy import select

from models import Customer, GlobalSettings, Team
from models.enums import CustomerKind, OperatorRole
from services.access import Right, can, customer_condition
from services.customers import SaveOptions, save_customer
from services.errors import PermissionDenied
from services.transactions import unit_of_work
from tests.conftest import refusal, written


@pytest.fixture
def staff(make_operator, session):
    team = Team(name="Service desk")
    session.add(team)
    boss = make_operator("boss.op@example.com", first_name="Bea", last_name="Boss")
    assigned = make_operator("assigned@example.com", first_name="Ada", last_name="Assigned")
    colleague = make_operator("colleague@example.com", first_name="Cyril", last_name="Colleague")
    stranger = make_operator("stranger@example.com", first_name="Sam", last_name="Stranger")
    creator = make_operator("creator@example.com", first_name="Cleo", last_name="Creator")
    with unit_of_work(session):
        assigned.teams, colleague.teams, assigned.manager = [team], [team], boss
    return {"boss": boss, "assigned": assigned, "colleague": colleague, "stranger": stranger,
            "creator": creator}


@pytest.fixture
def customer(new_customer, staff, maintainer, session):
    made = new_customer(staff["creator"], kind=CustomerKind.COMPANY, company_name="ACME")
    made.operators = [staff["assigned"]]
    return written(session, lambda: save_customer(session, made, maintainer, SaveOptions()))


def set_rights(session, **flags):
    rights = session.get(GlobalSettings, 1)
    with unit_of_work(session):
        for name, value in flags.items():
            setattr(rights, name, value)


def visible_names(session, operator, right=Right.VIEW):
    return session.scalars(select(Customer.display_name)
                           .where(customer_condition(session, operator, right))).all()


def test_assigned_operator_and_creator_have_every_right(session, staff, customer):
    for who in ("assigned", "creator"):
        for right in Right:
            assert can(session, staff[who], customer.id, right), (who, right)


def test_others_have_none_by_default(session, staff, customer):
    for who in ("boss", "colleague", "stranger"):
        assert visible_names(session, staff[who]) == []
        assert not any(can(session, staff[who], customer.id, right) for right in Right)


def test_maintainer_sees_everything(session, maintainer, customer):
    assert visible_names(session, maintainer) == ["ACME"]


def test_team_members_get_each_right_separately(session, staff, customer):
    set_rights(session, view_by_team_members=True)
    assert visible_names(session, staff["colleague"]) == ["ACME"]
    assert not can(session, staff["colleague"], customer.id, Right.EDIT)
    assert visible_names(session, staff["stranger"]) == [] and visible_names(session, staff["boss"]) == []
    set_rights(session, edit_by_team_members=True, delete_by_team_members=True)
    assert can(session, staff["colleague"], customer.id, Right.DELETE)


def test_managers_of_assigned_operators(session, staff, customer):
    set_rights(session, view_by_managers=True, edit_by_managers=True)
    assert visible_names(session, staff["boss"]) == ["ACME"]
    assert can(session, staff["boss"], customer.id, Right.EDIT)
    assert not can(session, staff["boss"], customer.id, Right.DELETE)
    assert visible_names(session, staff["colleague"]) == []


def test_inactive_operator_sees_nothing(session, staff, customer):
    with unit_of_work(session):
        staff["assigned"].is_active = False
    assert visible_names(session, staff["assigned"]) == []


def test_policy_is_one_sql_query(session, staff, customer, app):
    from sqlalchemy import event

    from extensions import db

    set_rights(session, view_by_team_members=True, view_by_managers=True)
    condition = customer_condition(session, staff["colleague"], Right.VIEW)
    statements = []

    def count(*args):
        statements.append(args[2])

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        rows = session.scalars(select(Customer).where(condition)).all()
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    assert [r.display_name for r in rows] == ["ACME"] and len(statements) == 1


def test_only_a_maintainer_assigns_operators(session, staff, customer, new_customer):
    def assign():
        customer.operators = [staff["assigned"], staff["colleague"]]
        save_customer(session, customer, staff["assigned"], SaveOptions())

    refusal(session, assign, PermissionDenied)
    session.expire_all()
    assert [o.email for o in session.get(Customer, customer.id).operators] == ["assigned@example.com"]
    with pytest.raises(PermissionDenied):
        new_customer(staff["stranger"], kind=CustomerKind.COMPANY, company_name="Mine",
                     operators=[staff["stranger"]])
    mine = new_customer(staff["stranger"], kind=CustomerKind.COMPANY, company_name="Mine")
    assert can(session, staff["stranger"], mine.id, Right.EDIT)  # the creator's own


def test_editing_without_the_right_is_refused_in_the_domain(session, staff, customer):
    def hijack():
        customer.company_name = "Hijacked"
        save_customer(session, customer, staff["stranger"], SaveOptions())

    refusal(session, hijack, PermissionDenied)
    session.expire_all()
    assert session.get(Customer, customer.id).company_name == "ACME"


def test_maintainer_role_reaches_all_without_assignment(make_operator, new_customer, session):
    other = make_operator("second.boss@example.com", OperatorRole.MAINTAINER)
    made = new_customer(kind=CustomerKind.PERSON, first_name="A", last_name="B")
    assert can(session, other, made.id, Right.DELETE)
