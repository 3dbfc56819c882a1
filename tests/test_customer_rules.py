"""Customer rules in the domain layer and in the database, on SQLite and PostgreSQL."""

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from extensions import db
from models import Building, Customer, Site
from models.enums import CustomerKind
from services.customers import SaveOptions, save_customer
from services.errors import ValidationFailed
from services.transactions import unit_of_work
from tests.conftest import written


def errors_of(call):
    with pytest.raises(ValidationFailed) as caught:
        with unit_of_work(db.session):
            call()
    return caught.value.errors


def test_person_display_name_and_normalised_contact_data(new_customer):
    person = new_customer(kind=CustomerKind.PERSON, first_name=" Peter ", middle_name="J",
                          last_name="Kováč", email="Peter@FIRMA.sk", primary_phone="0903 123 456")
    assert person.display_name == "Kováč, Peter J."
    assert person.email == "Peter@firma.sk"
    assert person.primary_phone == "+421903123456"
    assert person.status.name == "Active"
    assert person.version == 1


def test_required_names_depend_on_the_kind(new_customer):
    assert set(errors_of(lambda: new_customer(kind=CustomerKind.PERSON, first_name="Ann"))) == {"last_name"}
    assert "company_name" in errors_of(lambda: new_customer(kind=CustomerKind.COMPANY))


def test_bad_email_and_phone_are_reported_on_their_fields(new_customer, session):
    errors = errors_of(lambda: new_customer(kind=CustomerKind.COMPANY, company_name="X",
                                            email="x@@y", secondary_phone="12"))
    assert "e-mail" in errors["email"][0] and "phone" in errors["secondary_phone"][0]
    assert session.query(Customer).count() == 0


def test_building_must_belong_to_the_site(new_customer, session):
    hq, branch = Site(name="HQ"), Site(name="Branch")
    tower = Building(name="Tower", site=hq)
    session.add_all([hq, branch, tower])
    session.commit()
    errors = errors_of(lambda: new_customer(kind=CustomerKind.COMPANY, company_name="X",
                                            site=branch, building=tower))
    assert "not a building of Branch" in errors["building"][0]
    # A building alone brings its site along.
    ok = new_customer(kind=CustomerKind.COMPANY, company_name="Y", building=tower)
    assert ok.site_id == hq.id


def test_database_refuses_a_building_of_another_site(new_customer, session):
    hq, branch = Site(name="HQ"), Site(name="Branch")
    tower = Building(name="Tower", site=hq)
    session.add_all([hq, branch, tower])
    customer = new_customer(kind=CustomerKind.COMPANY, company_name="X", site=hq, building=tower)
    with pytest.raises(IntegrityError):
        session.execute(text("UPDATE customer SET site_id = :s WHERE id = :c"),
                        {"s": branch.id, "c": customer.id})
        session.commit()
    session.rollback()


def test_manager_must_be_a_person_not_itself_and_not_a_loop(new_customer, session):
    company = new_customer(kind=CustomerKind.COMPANY, company_name="ACME")
    boss = new_customer(kind=CustomerKind.PERSON, first_name="Eva", last_name="Malá")
    worker = new_customer(kind=CustomerKind.PERSON, first_name="Jan", last_name="Malý", manager=boss)
    assert "person" in errors_of(lambda: new_customer(
        kind=CustomerKind.PERSON, first_name="A", last_name="B", manager=company))["manager"][0]

    boss = session.get(Customer, boss.id)
    boss.manager = boss
    assert "own manager" in errors_of(lambda: save_customer(session, boss, None, SaveOptions()))["manager"][0]

    boss = session.get(Customer, boss.id)
    boss.manager = session.get(Customer, worker.id)
    assert "loop" in errors_of(lambda: save_customer(session, boss, None, SaveOptions()))["manager"][0]
    assert session.get(Customer, boss.id).manager_id is None


def test_company_id_and_vat_id_are_unique_when_given(new_customer):
    new_customer(kind=CustomerKind.COMPANY, company_name="A", registration_number="123", vat_id="SK1")
    new_customer(kind=CustomerKind.COMPANY, company_name="B")  # empty keys do not collide
    new_customer(kind=CustomerKind.COMPANY, company_name="C", registration_number="")
    errors = errors_of(lambda: new_customer(kind=CustomerKind.COMPANY, company_name="D",
                                            registration_number="123", vat_id="SK1"))
    assert set(errors) == {"registration_number", "vat_id"}


def test_database_check_constraint_requires_names_per_kind(session):
    with pytest.raises(IntegrityError):
        session.execute(text(
            "INSERT INTO customer (kind, display_name, sort_name, status_id, version, created_at, "
            "updated_at) VALUES ('person', 'x', 'x', 1, 1, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"))
        session.commit()
    session.rollback()


def test_switching_kind_clears_the_other_kinds_fields(new_customer, session):
    customer = new_customer(kind=CustomerKind.PERSON, first_name="Ann", last_name="Lee", title="CFO",
                            email="ann@lee.example.com")
    customer.kind = CustomerKind.COMPANY
    customer.company_name = "Lee Consulting"
    written(session, lambda: save_customer(session, customer, None, SaveOptions()))
    assert (customer.first_name, customer.title, customer.display_name) == (None, None, "Lee Consulting")
    # the person who turned out to stand for a firm is now its main contact, reachable as before
    [ann] = customer.contacts
    assert (ann.display_name, ann.email, ann.is_main) == ("Ann Lee", "ann@lee.example.com", True)
    assert ann.title == "CFO"


def test_a_person_without_an_email_cannot_become_a_company_without_a_contact(new_customer, session):
    customer = new_customer(kind=CustomerKind.PERSON, first_name="Bo", last_name="Ek")
    customer.kind = CustomerKind.COMPANY
    customer.company_name = "Ek AB"
    errors = errors_of(lambda: save_customer(session, customer, None, SaveOptions()))
    assert "contact with an e-mail" in errors["kind"][0]
    session.expire_all()
    assert session.get(Customer, customer.id).kind == CustomerKind.PERSON


def test_contacts_of_a_company_are_validated_with_it(new_customer, session):
    errors = errors_of(lambda: new_customer(
        kind=CustomerKind.COMPANY, company_name="ACME",
        contacts=[{"first_name": "Zuzana", "last_name": "Nová", "email": "bad@"}]))
    assert "Zuzana Nová" in errors["__form__"][0]
    company = new_customer(kind=CustomerKind.COMPANY, company_name="ACME", contacts=[
        {"first_name": "Zuzana", "last_name": "Nová", "phone": "0903111222", "is_main": True},
        {"last_name": "Office", "email": "office@acme.sk"}])
    zuzana = next(c for c in company.contacts if c.last_name == "Nová")
    assert zuzana.phone == "+421903111222" and zuzana.display_name == "Zuzana Nová"


def test_a_company_needs_a_contact_with_an_email_and_keeps_its_last_one(new_customer, session):
    phone_only = [{"first_name": "Zuzana", "last_name": "Nová", "phone": "0903111222"}]
    for contacts in ([], phone_only):
        errors = errors_of(lambda c=contacts: new_customer(kind=CustomerKind.COMPANY, company_name="ACME",
                                                           contacts=c))
        assert set(errors) == {"contacts"} and "contact with an e-mail" in errors["contacts"][0]
    assert session.query(Customer).count() == 0
    person = new_customer(kind=CustomerKind.PERSON, first_name="Ann", last_name="Lee")  # no contacts
    assert person.contacts == []

    company = new_customer(kind=CustomerKind.COMPANY, company_name="ACME",
                           contacts=[{"last_name": "Office", "email": "office@acme.sk"}, *phone_only])
    office = next(c for c in company.contacts if c.email)
    company.contacts.remove(office)
    assert "contacts" in errors_of(lambda: save_customer(session, company, None, SaveOptions()))
    session.expire_all()
    kept = session.get(Customer, company.id).contacts
    assert sorted(c.email or "" for c in kept) == ["", "office@acme.sk"]


def test_stale_update_is_refused_and_changes_nothing(new_customer, session):
    customer = new_customer(kind=CustomerKind.COMPANY, company_name="Original")
    with Session(db.engine) as second:
        theirs = second.get(Customer, customer.id)
        theirs.company_name = "Theirs"
        second.commit()
    customer.company_name = "Mine"
    errors = errors_of(lambda: save_customer(session, customer, None, SaveOptions()))
    assert "Somebody else changed this record" in errors["__form__"][0]
    assert session.get(Customer, customer.id).company_name == "Theirs"
