"""Merging customers: everything moves in one transaction, conflicts are decided first, the
merged-away record resolves to the survivor, the access rules hold, and a merge can be undone."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from models import AuditEvent, Computer, Contact, Customer, PortalAccount, Request, Workgroup
from models.enums import CustomerKind
from services.customer_settings import save_customer_settings
from services.errors import DomainError, PermissionDenied, ValidationFailed
from services.merge import merge_customers, merge_plan, undo_merge
from services.portal import create_portal_account
from services.secrets import SecretBox
from tests.conftest import ENCRYPTION_KEY
from tests.test_api import Api

BOX = SecretBox(ENCRYPTION_KEY)


@pytest.fixture
def pair(session, new_customer, operator):
    helpdesk = Workgroup(name="Helpdesk")
    session.add(helpdesk)
    session.commit()
    old = new_customer(kind=CustomerKind.COMPANY, company_name="ACME", registration_number="50111222",
                       email="office@acme.sk", operators=[operator], workgroups=[helpdesk],
                       contacts=[{"last_name": "Stará", "email": "stara@acme.sk", "is_main": True}])
    new = new_customer(kind=CustomerKind.COMPANY, company_name="ACME s.r.o.", email=None,
                       primary_phone="02 5010 1234", operators=[operator],
                       contacts=[{"last_name": "Nová", "email": "nova@acme.sk"}])
    session.add_all([Request(customer=new, subject="Printer"), Computer(customer=new, hostname="pc-1"),
                     Computer(customer=old, hostname="pc-1")])
    session.commit()
    return old, new


def test_a_company_merge_moves_everything_and_leaves_a_pointer(session, maintainer, pair):
    survivor, other = pair
    plan = merge_plan(session, maintainer, survivor, other, BOX)
    proposed = {f.name: f.proposed for f in plan.fields}
    assert proposed["company_name"] == "other"  # the newer non-empty value
    assert proposed["email"] == "survivor" and proposed["primary_phone"] == "other"
    assert plan.moves["contacts"] == 1 and plan.moves["requests"] == 1 and plan.moves["computers"] == 1
    event = merge_customers(session, maintainer, survivor, other, BOX,
                            choices={"company_name": "survivor"}, decisions={})
    session.expire_all()
    kept, gone = session.get(Customer, survivor.id), session.get(Customer, other.id)
    assert kept.company_name == "ACME" and kept.primary_phone == "+421250101234"
    assert kept.email == "office@acme.sk" and kept.registration_number == "50111222"
    assert sorted(c.last_name for c in kept.contacts) == ["Nová", "Stará"]
    assert session.scalar(select(Request.customer_id)) == kept.id
    computers = session.scalars(select(Computer).where(Computer.customer_id == kept.id))
    # (customer, hostname) is unique: both computers are kept, the moved one renamed
    assert sorted(c.hostname for c in computers) == ["pc-1", "pc-1 (from ACME s.r.o.)"]
    assert gone.merged_into_id == kept.id and gone.status.is_active is False
    assert event.changes["merged"] == ["ACME s.r.o.", "ACME"]


def test_persons_merge_and_kinds_do_not_mix(session, maintainer, new_customer):
    eva = new_customer(kind=CustomerKind.PERSON, first_name="Eva", last_name="Malá", email="eva@example.sk")
    eva2 = new_customer(kind=CustomerKind.PERSON, first_name="Eva", last_name="Mala", title="Accountant")
    company = new_customer(kind=CustomerKind.COMPANY, company_name="Malá s.r.o.")
    with pytest.raises(DomainError, match="cannot be merged"):
        merge_plan(session, maintainer, eva, company, BOX)
    merge_customers(session, maintainer, eva, eva2, BOX, choices={}, decisions={})
    session.expire_all()
    assert session.get(Customer, eva.id).title == "Accountant"
    assert session.get(Customer, eva.id).email == "eva@example.sk"
    with pytest.raises(DomainError, match="already merged"):
        merge_plan(session, maintainer, eva, eva2, BOX)  # merge another one in, not this one again


def test_conflicts_must_be_decided_before_anything_is_written(session, maintainer, pair, operator):
    survivor, other = pair
    for customer, password in ((survivor, "first-pass"), (other, "second-pass")):
        save_customer_settings(session, customer, operator, BOX, {"cmonitor_password": password})
        create_portal_account(session, customer, maintainer, username=f"portal-{customer.id}",
                              password="a long portal password", security_group=None)
    plan = merge_plan(session, maintainer, survivor, other, BOX)
    assert set(plan.conflicts) == {"portal", "cmonitor_password"}
    with pytest.raises(ValidationFailed, match="C-Monitor access passwords"):
        merge_customers(session, maintainer, survivor, other, BOX, choices={}, decisions={"portal": "other"})
    session.expire_all()
    assert session.get(Customer, other.id).merged_into_id is None
    assert session.scalar(select(Contact.customer_id).where(Contact.last_name == "Nová")) == other.id
    merge_customers(session, maintainer, session.get(Customer, survivor.id), session.get(Customer, other.id),
                    BOX, choices={}, decisions={"portal": "other", "cmonitor_password": "other"})
    session.expire_all()
    account = session.scalar(select(PortalAccount).where(PortalAccount.customer_id == survivor.id))
    assert account.username == f"portal-{other.id}" and account.is_active
    from services.customer_settings import settings_of
    assert BOX.decrypt(settings_of(session, session.get(Customer, survivor.id)).cmonitor_password_encrypted) \
        == "second-pass"


def test_only_editors_of_both_or_maintainers_merge(session, pair, make_operator, new_customer, operator):
    survivor, other = pair
    stranger = make_operator("stranger@example.com")
    with pytest.raises(PermissionDenied):
        merge_plan(session, stranger, survivor, other, BOX)
    assert merge_plan(session, operator, survivor, other, BOX) is not None  # assigned to both
    third = new_customer(kind=CustomerKind.COMPANY, company_name="ACME Third", operators=[stranger])
    with pytest.raises(PermissionDenied):
        merge_plan(session, operator, survivor, third, BOX)


def test_an_operator_cannot_change_operators_by_merging(session, pair, make_operator, operator):
    survivor, other = pair
    colleague = make_operator("colleague@example.com")
    other.operators.append(colleague)
    session.commit()
    with pytest.raises(PermissionDenied, match="only a maintainer"):
        merge_customers(session, operator, survivor, other, BOX, choices={}, decisions={})


def test_undo_restores_both_until_the_survivor_changes(session, maintainer, pair, operator):
    survivor, other = pair
    event = merge_customers(session, maintainer, survivor, other, BOX, choices={}, decisions={})
    with pytest.raises(PermissionDenied):
        undo_merge(session, operator, event)
    undo_merge(session, maintainer, event)
    session.expire_all()
    back = session.get(Customer, other.id)
    assert back.merged_into_id is None and back.status.is_active and back.company_name == "ACME s.r.o."
    assert session.get(Customer, survivor.id).company_name == "ACME"
    assert [c.last_name for c in back.contacts] == ["Nová"]
    assert session.scalar(select(Request.customer_id)) == other.id
    assert sorted(c.hostname for c in session.scalars(select(Computer))) == ["pc-1", "pc-1"]
    with pytest.raises(DomainError, match="can still be undone"):
        undo_merge(session, maintainer, session.get(AuditEvent, event.id))

    again = merge_customers(session, maintainer, session.get(Customer, survivor.id), back, BOX,
                            choices={}, decisions={})
    kept = session.get(Customer, survivor.id)
    kept.notes = "changed after the merge"
    session.commit()
    with pytest.raises(DomainError, match="changed after the merge"):
        undo_merge(session, maintainer, again)


def test_old_links_and_api_ids_lead_to_the_survivor(app, session, maintainer, maintainer_client, pair):
    survivor, other = pair
    merge_customers(session, maintainer, survivor, other, BOX, choices={"company_name": "survivor"},
                    decisions={})
    answer = maintainer_client.get(f"/admin/customers/details/?id={other.id}")
    assert answer.status_code == 302 and answer.headers["Location"].endswith(f"id={survivor.id}")
    listing = maintainer_client.get("/admin/customers/").get_data(as_text=True)
    assert "ACME s.r.o." not in listing  # the pointer record leaves lists
    from services.api_tokens import create_token
    api = Api(app.test_client(), create_token(session, maintainer, "t")[1])
    moved = api.get(f"/customers/{other.id}")
    assert moved.status_code == 308 and moved.headers["Location"].endswith(f"/api/v1/customers/{survivor.id}")


def test_merge_through_the_panel_and_undo(maintainer_client, session, pair):
    survivor, other = pair
    page = maintainer_client.get(f"/admin/customers/merge/?survivor={survivor.id}&other={other.id}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and 'name="field_company_name"' in html
    done = maintainer_client.submit(
        f"/admin/customers/merge/?survivor={survivor.id}&other={other.id}",
        {"survivor": str(survivor.id), "other": str(other.id), "field_company_name": "other",
         "survivor_version": str(survivor.version), "other_version": str(other.version)})
    assert done.status_code == 302 and "/merge/done/" in done.headers["Location"]
    session.expire_all()
    assert session.get(Customer, survivor.id).company_name == "ACME s.r.o."
    result = maintainer_client.get(done.headers["Location"]).get_data(as_text=True)
    assert "Undo the merge" in result
    undo_url = done.headers["Location"].replace("/done/", "/undo/")
    assert maintainer_client.submit(done.headers["Location"], {}, post_url=undo_url).status_code == 302
    session.expire_all()
    assert session.get(Customer, other.id).merged_into_id is None


def test_details_offer_to_merge_an_existing_duplicate_pair(maintainer_client, pair):
    survivor, other = pair
    html = maintainer_client.get(f"/admin/customers/details/?id={survivor.id}").get_data(as_text=True)
    assert 'data-testid="possible-duplicates"' in html and "ACME s.r.o." in html
    assert f"other={other.id}" in html


def test_two_selected_in_the_list_open_the_merge(maintainer_client, pair):
    survivor, other = pair
    response = maintainer_client.submit("/admin/customers/", {"action": "merge",
                                                              "rowid": [str(survivor.id), str(other.id)]},
                                        post_url="/admin/customers/action/")
    assert response.status_code == 302
    assert f"survivor={survivor.id}" in response.headers["Location"]
    assert f"other={other.id}" in response.headers["Location"]
    one = maintainer_client.submit("/admin/customers/", {"action": "merge", "rowid": [str(survivor.id)]},
                                   post_url="/admin/customers/action/")
    assert one.status_code == 302 and "merge" not in one.headers["Location"]


def test_exports_follow_the_access_policy_and_hold_no_secrets(session, maintainer, operator_client,
                                                              maintainer_client, pair, new_customer):
    import io

    import openpyxl

    from services.computers import registration_key

    survivor, other = pair
    key = registration_key(session, maintainer, survivor, BOX)
    save_customer_settings(session, survivor, maintainer, BOX, {"cmonitor_password": "agent-secret"})
    new_customer(kind=CustomerKind.COMPANY, company_name="Foreign Firm",
                 contacts=[{"last_name": "Cudzí", "email": "cudzi@foreign.sk"}])
    merge_customers(session, maintainer, survivor, other, BOX, choices={"company_name": "survivor"},
                    decisions={})
    mine = operator_client.get("/admin/customers/export/csv/").get_data(as_text=True)
    assert "ACME" in mine and "Foreign Firm" not in mine and "ACME s.r.o." not in mine  # no tombstone
    contacts = operator_client.get("/admin/contacts/export/csv/").get_data(as_text=True)
    assert "Nová" in contacts and "cudzi@foreign.sk" not in contacts
    everything = maintainer_client.get("/admin/customers/export/csv/").get_data(as_text=True)
    workbook = openpyxl.load_workbook(io.BytesIO(maintainer_client.get("/admin/customers/export/xlsx/").data))
    cells = " ".join(str(c.value) for row in workbook.active.iter_rows() for c in row)
    for text in (everything, cells, contacts):
        assert key not in text and "agent-secret" not in text and "gAAAAA" not in text  # Fernet tokens
    assert "Foreign Firm" in everything and "ACME s.r.o." not in everything
