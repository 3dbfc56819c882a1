"""Portal access of a customer: created, reset and disabled by those who may edit it, audited,
with no password ever shown or stored in clear."""

import re

import pytest

from models import AuditEvent, PortalAccount, SecurityGroup
from models.enums import CustomerKind
from services.operators import verify_password
from services.transactions import USERNAME_TAKEN


def account_version_on(html: str) -> str:
    """The version the page's portal-account forms were rendered with (their hidden version_seen;
    the customer header's own forms carry the customer's)."""
    found = re.search(r'name="action" value="(?:reset|disable|enable)">\s*'
                      r'<input type="hidden" name="version_seen" value="(\d+)"', html)
    assert found, "page has no portal account form"
    return found.group(1)


@pytest.fixture
def acme(new_customer, operator):
    return new_customer(kind=CustomerKind.COMPANY, company_name="ACME", operators=[operator])


def test_create_reset_and_disable(operator_client, session, acme):
    group = SecurityGroup(name="Portal users")
    session.add(group)
    session.commit()
    url = f"/admin/customers/portal/?id={acme.id}"
    short = operator_client.submit(url, {"action": "create", "username": "acme", "password": "short"})
    assert "at least 10 characters" in short.get_data(as_text=True)
    assert 'value="acme"' in short.get_data(as_text=True) and session.query(PortalAccount).count() == 0
    created = operator_client.submit(url, {"action": "create", "username": "acme",
                                           "password": "first password 1", "security_group": str(group.id)})
    assert created.status_code == 302
    account = session.query(PortalAccount).one()
    assert account.must_change_password and verify_password(account.password_hash, "first password 1")
    page = operator_client.get(url).get_data(as_text=True)
    assert "Portal users" in page and "first password 1" not in page and "$argon2" not in page
    assert operator_client.submit(url, {"action": "reset", "password": "temporary pass 2",
                                        "version_seen": account_version_on(page)}).status_code == 302
    page = operator_client.get(url).get_data(as_text=True)
    disabled = operator_client.submit(url, {"action": "disable", "version_seen": account_version_on(page)})
    assert disabled.status_code == 302
    session.expire_all()
    account = session.query(PortalAccount).one()
    assert verify_password(account.password_hash, "temporary pass 2") and not account.is_active
    trail = [e.changes for e in session.query(AuditEvent).filter_by(action="portal_credentials")]
    assert [t["portal"][1] for t in trail] == ["created", "password reset", "disabled"]
    assert "temporary pass 2" not in repr(trail)


def test_usernames_are_unique(maintainer_client, session, acme, new_customer):
    other = new_customer(kind=CustomerKind.COMPANY, company_name="Other")
    maintainer_client.submit(f"/admin/customers/portal/?id={acme.id}",
                             {"action": "create", "username": "shared", "password": "first password 1"})
    response = maintainer_client.submit(f"/admin/customers/portal/?id={other.id}",
                                        {"action": "create", "username": "SHARED",
                                         "password": "first password 1"})
    assert USERNAME_TAKEN in response.get_data(as_text=True)
    assert session.query(PortalAccount).filter_by(customer_id=other.id).count() == 0
