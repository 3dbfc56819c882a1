"""A phone number stored earlier that the current phone metadata refuses (issue 15, item 9), on
SQLite and PostgreSQL.

phonenumbers' ranges change between releases, so a number saved under an earlier one (or
written before the check existed) may be "not a valid phone number" today. The forms and the API
send the stored number back unchanged; the rule (services.contact_info.phone_to_store): a phone
sent back as it is stored — or as the forms show it, or as the same digits written another way —
is kept exactly, unchecked; a changed one must be valid. Here the numbers are stored behind the
product's back (+421 20… is no Slovak number in the pinned metadata), and an operator saves the
customer's other fields through the edit form, the contact's edit form and the API.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from models import Contact, Customer
from models.enums import CustomerKind, OperatorRole
from services.contact_info import format_phone, normalise_phone, phone_to_store
from tests.conftest import Browserless
from tests.test_api import Api, token_of
from tests.test_blind_overwrites import rendered_form
from tests.test_doors_and_rules import page_text

pytestmark = pytest.mark.postgres

OLD_PRIMARY = "+421201234567"  # a Bratislava number in a range the pinned metadata does not have
OLD_SECONDARY = "+421209876543"
OLD_CONTACT = "+421211223344"
VALID = "+421903123456"
REFUSED = "Not a valid phone number for SK."


def test_the_rule_keeps_the_stored_number_in_any_writing_and_checks_a_changed_one():
    with pytest.raises(ValueError, match="Not a valid phone number"):
        normalise_phone(OLD_PRIMARY, "SK")  # the premise: today's metadata refuses it
    for sent_back in (OLD_PRIMARY, format_phone(OLD_PRIMARY), " +421 2 0123 4567 ", "0201234567"):
        assert phone_to_store(sent_back, OLD_PRIMARY, "SK") == OLD_PRIMARY, sent_back
    with pytest.raises(ValueError, match="Not a valid phone number"):
        phone_to_store(OLD_SECONDARY, OLD_PRIMARY, "SK")  # another refused number is a change
    with pytest.raises(ValueError, match="Not a valid phone number"):
        phone_to_store(OLD_PRIMARY, None, "SK")  # a new record's number is checked
    assert phone_to_store("0903 123 456", OLD_PRIMARY, "SK") == VALID
    assert phone_to_store("", OLD_PRIMARY, "SK") is None  # clearing it is allowed


@pytest.fixture
def acme(session, new_customer, maintainer):
    """A company whose phones and contact's phone were stored before today's metadata."""
    customer = new_customer(kind=CustomerKind.COMPANY, company_name="ACME s.r.o.", primary_phone=VALID,
                            contacts=[{"first_name": "Jana", "last_name": "Nová", "email": "jana@acme.sk",
                                       "phone": VALID, "is_main": True}])
    session.execute(update(Customer).where(Customer.id == customer.id)
                    .values(primary_phone=OLD_PRIMARY, secondary_phone=OLD_SECONDARY))
    session.execute(update(Contact).where(Contact.customer_id == customer.id).values(phone=OLD_CONTACT))
    session.commit()
    return customer.id


def stored(session, customer_id: int) -> tuple:
    session.expire_all()
    customer = session.get(Customer, customer_id)
    contact = session.scalars(select(Contact).where(Contact.customer_id == customer_id)).one()
    return customer.primary_phone, customer.secondary_phone, contact.phone, customer.notes, contact.title


@pytest.fixture
def panel(app, maintainer):
    client = Browserless(app.test_client())
    assert client.login(maintainer.email).status_code == 302
    return client


@pytest.fixture
def api(app, session, make_operator):
    maintainer = make_operator("api@example.com", OperatorRole.MAINTAINER)
    return Api(app.test_client(), token_of(session, maintainer))


def test_the_edit_form_saves_other_fields_of_a_customer_with_stored_phones_the_metadata_refuses(
        acme, session, panel):
    page = f"/admin/customers/edit/?id={acme}"
    form = rendered_form(panel, page, page)
    assert form["primary_phone"] == [format_phone(OLD_PRIMARY)]  # what goes back is what was shown
    answer = panel.post(page, data={**form, "notes": ["Called about the invoice"]})
    assert answer.status_code == 302, page_text(answer.get_data(as_text=True))[:500]
    assert stored(session, acme) == (OLD_PRIMARY, OLD_SECONDARY, OLD_CONTACT, "Called about the invoice",
                                     None)


def test_the_edit_form_still_refuses_a_changed_number_the_metadata_refuses(acme, session, panel):
    page = f"/admin/customers/edit/?id={acme}"
    form = rendered_form(panel, page, page)
    answer = panel.post(page, data={**form, "notes": ["Mine"], "secondary_phone": ["+421 2 0000 0001"]})
    assert answer.status_code == 200 and REFUSED in page_text(answer.get_data(as_text=True))
    assert stored(session, acme) == (OLD_PRIMARY, OLD_SECONDARY, OLD_CONTACT, None, None)
    form = rendered_form(panel, page, page)
    answer = panel.post(page, data={**form, "secondary_phone": ["0903 123 456"]})
    assert answer.status_code == 302
    assert stored(session, acme)[:3] == (OLD_PRIMARY, VALID, OLD_CONTACT)


def test_the_contact_form_saves_other_fields_of_a_contact_with_a_stored_phone_the_metadata_refuses(
        acme, session, panel):
    contact_id = session.scalar(select(Contact.id).where(Contact.customer_id == acme))
    page = f"/admin/contacts/edit/?id={contact_id}"
    form = rendered_form(panel, page, page)
    answer = panel.post(page, data={**form, "title": ["Accountant"]})
    assert answer.status_code == 302, page_text(answer.get_data(as_text=True))[:500]
    assert stored(session, acme) == (OLD_PRIMARY, OLD_SECONDARY, OLD_CONTACT, None, "Accountant")


def test_the_api_saves_other_fields_of_a_customer_with_stored_phones_the_metadata_refuses(acme, session, api):
    read = api.get(f"/customers/{acme}").get_json()
    assert read["primary_phone"] == OLD_PRIMARY
    # A client sending back what it read, and one sending only what it changes.
    sent_back = {k: read[k] for k in ("primary_phone", "secondary_phone")}
    answer = api.patch(f"/customers/{acme}", json={**sent_back, "notes": "first", "version": read["version"]})
    assert answer.status_code == 200, answer.get_json()
    version = answer.get_json()["version"]
    answer = api.patch(f"/customers/{acme}", json={"notes": "second", "version": version})
    assert answer.status_code == 200, answer.get_json()
    assert stored(session, acme) == (OLD_PRIMARY, OLD_SECONDARY, OLD_CONTACT, "second", None)
    answer = api.patch(f"/customers/{acme}", json={"primary_phone": "+421 2 0000 0001", "notes": "third",
                                                   "version": answer.get_json()["version"]})
    assert answer.status_code == 422 and REFUSED in str(answer.get_json())
    assert stored(session, acme)[3] == "second"
