"""The customer's technical-settings tabs: each saves on its own, secrets never shown."""

import pytest

from models import CustomerSettings
from models.enums import CustomerKind
from services.secrets import SecretBox
from tests.conftest import ENCRYPTION_KEY, csrf_from


@pytest.fixture
def acme(new_customer, operator):
    return new_customer(kind=CustomerKind.COMPANY, company_name="ACME", operators=[operator])


def save_tab(client, customer, tab, data):
    url = f"/admin/customers/settings/?id={customer.id}&tab={tab}"
    page = client.get(url).get_data(as_text=True)
    version = page.split('name="version_seen" value="')[1].split('"')[0]
    return client.post(url, data={"version_seen": version, **data, "csrf_token": csrf_from(page)})


def test_cmonitor_password_is_saved_encrypted_and_never_shown(operator_client, session, acme):
    response = save_tab(operator_client, acme, "cmonitor", {"cmonitor_password": "agent-pass",
                                                            "cmonitor_password_confirm": "agent-pass"})
    assert response.status_code == 302
    row = session.query(CustomerSettings).one()
    assert SecretBox(ENCRYPTION_KEY).decrypt(row.cmonitor_password_encrypted) == "agent-pass"
    page = operator_client.get(f"/admin/customers/settings/?id={acme.id}&tab=cmonitor").get_data(as_text=True)
    assert "agent-pass" not in page and "Set — leave empty to keep." in page
    # Saving another tab leaves the password alone.
    saved = save_tab(operator_client, acme, "requests", {"requests_by_email_enabled": "y",
                                                         "request_intake_address": "desk@acme.sk"})
    assert saved.status_code == 302
    session.expire_all()
    row = session.query(CustomerSettings).one()
    assert row.requests_by_email_enabled and row.cmonitor_password_encrypted


def test_mail_tab_checks_its_rules_and_keeps_the_input(operator_client, session, acme):
    response = save_tab(operator_client, acme, "mail", {"use_builtin_mail_servers": "0",
                                                        "pop3_host": "pop.acme.sk"})
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "Required when the customer uses its own mail servers." in html
    assert 'value="pop.acme.sk"' in html and session.query(CustomerSettings).count() == 0


def test_a_stale_tab_is_refused(operator_client, maintainer_client, session, acme):
    url = f"/admin/customers/settings/?id={acme.id}&tab=requests"
    stale = operator_client.get(url).get_data(as_text=True)
    save_tab(operator_client, acme, "cmonitor", {})  # creates the settings row (version 1)
    save_tab(maintainer_client, acme, "requests", {"request_intake_address": "a@acme.sk"})
    refused = operator_client.post(url, data={"version_seen": "1", "request_intake_address": "b@acme.sk",
                                              "csrf_token": csrf_from(stale)})
    assert "changed while you were editing" in refused.get_data(as_text=True)
    session.expire_all()
    assert session.query(CustomerSettings).one().request_intake_address == "a@acme.sk"


def test_viewers_without_the_edit_right_cannot_save(app, session, acme, make_operator):
    from models import GlobalSettings, Team
    from tests.conftest import Browserless

    team = Team(name="Desk")
    session.add(team)
    viewer = make_operator("viewer@example.com")
    viewer.teams = [team]
    acme.operators[0].teams = [team]
    session.get(GlobalSettings, 1).view_by_team_members = True
    session.commit()
    client = Browserless(app.test_client())
    client.login("viewer@example.com")
    page = client.get(f"/admin/customers/settings/?id={acme.id}").get_data(as_text=True)
    assert "<fieldset disabled>" in page
    assert save_tab(client, acme, "cmonitor", {"cmonitor_password": "x", "cmonitor_password_confirm": "x"}
                    ).status_code == 403
