"""The desk's side of the portal: portal access of a company's contacts (created, reset, disabled
from the Contacts tab by those who may edit the customer, audited on the customer), and the
security groups' two rights, edited by maintainers only."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from models import AuditEvent, PortalAccount, SecurityGroup
from models.enums import CustomerKind
from services.errors import DomainError
from services.operators import verify_password
from services.portal import create_portal_account
from services.transactions import USERNAME_TAKEN
from tests.conftest import csrf_from, refusal
from tests.portal_helpers import FIRST, PortalClient
from tests.served_app import page_text


def account_version_on(html: str) -> str:
    """The version the page's portal-account forms were rendered with (their hidden version_seen;
    the customer header's own forms carry the customer's)."""
    found = re.search(r'name="action" value="(?:reset|disable|enable)">\s*'
                      r'<input type="hidden" name="version_seen" value="(\d+)"', html)
    assert found, "page has no portal account form"
    return found.group(1)


@pytest.fixture
def acme(new_customer, operator):
    return new_customer(kind=CustomerKind.COMPANY, company_name="Acme", operators=[operator], contacts=[
        {"first_name": "Mia", "last_name": "Main", "email": "mia@acme.sk", "is_main": True},
        {"first_name": "Cyril", "last_name": "Contact", "email": "cyril@acme.sk"}])


def cyril_of(company):
    return next(c for c in company.contacts if c.first_name == "Cyril")


def page_url(customer, contact) -> str:
    return f"/admin/customers/contact-portal/{customer.id}/{contact.id}"


def test_an_operator_gives_a_contact_portal_access_from_the_contacts_tab(operator_client, app, session, acme):
    cyril = cyril_of(acme)
    tab = operator_client.get(f"/admin/customers/contacts-tab/?id={acme.id}").get_data(as_text=True)
    assert page_url(acme, cyril) in tab
    form = operator_client.get(page_url(acme, cyril)).get_data(as_text=True)
    assert "Portal access of Cyril Contact" in page_text(form) and 'value="cyril@acme.sk"' in form
    weak = operator_client.submit(page_url(acme, cyril), {"action": "create", "username": "cyril@acme.sk",
                                                          "password": "short"})
    assert "at least 10 characters" in page_text(weak.get_data(as_text=True))
    made = operator_client.submit(page_url(acme, cyril), {"action": "create", "username": "cyril@acme.sk",
                                                          "password": FIRST})
    assert made.status_code == 302
    account = session.scalar(select(PortalAccount))
    assert (account.contact_id, account.customer_id, account.must_change_password) == (cyril.id, None, True)
    tab = operator_client.get(f"/admin/customers/contacts-tab/?id={acme.id}").get_data(as_text=True)
    assert "Portal access (enabled)" in page_text(tab)
    # The contact signs in; the operator resets the password, then disables sign-in.
    assert PortalClient(app).sign_in("cyril@acme.sk").status_code == 302
    url = page_url(acme, cyril)
    page = operator_client.get(url).get_data(as_text=True)
    reset = {"action": "reset", "password": "temporary pass 9", "version_seen": account_version_on(page)}
    assert operator_client.submit(url, reset).status_code == 302
    page = operator_client.get(url).get_data(as_text=True)
    disable = {"action": "disable", "version_seen": account_version_on(page)}
    assert operator_client.submit(url, disable).status_code == 302
    refused = PortalClient(app).sign_in("cyril@acme.sk", "temporary pass 9")
    assert "cannot sign in at the moment" in page_text(refused.get_data(as_text=True))
    trail = [e.changes for e in session.scalars(select(AuditEvent).where(
        AuditEvent.action == "portal_credentials", AuditEvent.entity_id == acme.id))]
    assert [(t["portal"][1], t["contact"][1]) for t in trail] == [
        ("created", "Cyril Contact"), ("password reset", "Cyril Contact"), ("disabled", "Cyril Contact")]
    assert FIRST not in repr(trail) and "temporary pass 9" not in repr(trail)


def test_the_customers_own_account_and_a_contacts_share_the_user_names(maintainer_client, session, acme):
    cyril = cyril_of(acme)
    own = maintainer_client.submit(f"/admin/customers/portal/?id={acme.id}",
                                   {"action": "create", "username": "acme", "password": FIRST})
    assert own.status_code == 302
    clash = maintainer_client.submit(page_url(acme, cyril), {"action": "create", "username": "ACME",
                                                             "password": FIRST})
    assert USERNAME_TAKEN in page_text(clash.get_data(as_text=True))
    assert maintainer_client.submit(page_url(acme, cyril), {"action": "create", "username": "cyril",
                                                            "password": FIRST}).status_code == 302
    again = maintainer_client.submit(page_url(acme, cyril), {"action": "create", "username": "cyril2",
                                                             "password": FIRST})
    assert "This contact has portal access already" in page_text(again.get_data(as_text=True))
    assert session.query(PortalAccount).count() == 2


def test_who_may_open_a_contacts_portal_page(app, session, acme, new_customer, make_operator,
                                             operator_client):
    other = new_customer(kind=CustomerKind.COMPANY, company_name="Other")
    outsider = make_operator("outsider@example.com")
    from tests.conftest import Browserless

    stranger = Browserless(app.test_client())
    assert stranger.login(outsider.email).status_code == 302
    cyril = cyril_of(acme)
    assert stranger.get(page_url(acme, cyril)).status_code == 404  # a customer they may not see
    # Another customer's contact under this customer's id: not found, whoever asks.
    assert operator_client.get(page_url(acme, other.contacts[0])).status_code == 404
    assert operator_client.get(f"/admin/customers/contact-portal/{acme.id}/2147483647").status_code == 404
    # Anonymous visitors go to the sign-in; nothing was created on the way.
    assert Browserless(app.test_client()).get(page_url(acme, cyril)).status_code == 302
    assert session.query(PortalAccount).count() == 0


def test_the_service_refuses_a_contact_of_another_customer(session, acme, new_customer, maintainer):
    other = new_customer(kind=CustomerKind.COMPANY, company_name="Other")
    with pytest.raises(DomainError):
        create_portal_account(session, acme, maintainer, username="x", password=FIRST, security_group=None,
                              contact=other.contacts[0])
    errors = refusal(session, lambda: create_portal_account(session, acme, maintainer, username="bad\x00name",
                                                            password=FIRST, security_group=None))
    assert "username" in errors and session.query(PortalAccount).count() == 0


def test_maintainers_set_the_rights_of_a_security_group(maintainer_client, operator_client, session):
    new = maintainer_client.get("/admin/security-groups/new/").get_data(as_text=True)
    assert "May create requests" in new and "Contacts see all the company" in new
    answer = maintainer_client.submit("/admin/security-groups/new/",
                                      {"name": "Managers", "may_see_all_requests": "y"})
    assert answer.status_code == 302
    group = session.scalar(select(SecurityGroup).where(SecurityGroup.name == "Managers"))
    assert (group.may_create_requests, group.may_see_all_requests) == (False, True)  # unticked is unticked
    listing = page_text(maintainer_client.get("/admin/security-groups/").get_data(as_text=True))
    assert "Contacts see all the company's requests" in listing
    assert operator_client.get("/admin/security-groups/").status_code == 403
    token = csrf_from(operator_client.get("/admin/customers/new/").get_data(as_text=True))
    refused = operator_client.post("/admin/security-groups/new/", data={"name": "Mine", "csrf_token": token})
    assert refused.status_code == 403 and session.query(SecurityGroup).filter_by(name="Mine").count() == 0
    assert session.scalar(select(AuditEvent).where(AuditEvent.entity_type == "securitygroup")) is not None


def test_a_contacts_reset_is_based_on_the_version_the_page_showed(operator_client, maintainer_client,
                                                                   session, acme):
    url = page_url(acme, cyril_of(acme))
    created = maintainer_client.submit(url, {"action": "create", "username": "cyril", "password": FIRST})
    assert created.status_code == 302
    seen = account_version_on(operator_client.get(url).get_data(as_text=True))
    page = maintainer_client.get(url).get_data(as_text=True)
    # meanwhile:
    maintainer_client.submit(url, {"action": "disable", "version_seen": account_version_on(page)})
    stale = operator_client.submit(url, {"action": "reset", "password": "operator's pass 1",
                                         "version_seen": seen})
    assert "changed while you were editing" in page_text(stale.get_data(as_text=True))
    blind = operator_client.submit(url, {"action": "reset", "password": "operator's pass 1"})
    assert "did not say which version" in page_text(blind.get_data(as_text=True))
    session.expire_all()
    account = session.scalar(select(PortalAccount))
    assert not account.is_active and verify_password(account.password_hash, FIRST)  # no reset written
