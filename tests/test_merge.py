"""Merging customers: everything moves in one transaction, conflicts are decided first, the
merged-away record resolves to the survivor, the access rules hold, and a merge can be undone."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from models import AuditEvent, Computer, Contact, Customer, PortalAccount, Request, Workgroup
from models.enums import CustomerKind
from services.customer_settings import save_customer_settings
from services.errors import DomainError, PermissionDenied
from services.merge import merge_customers, merge_plan, undo_merge
from services.portal import create_portal_account
from services.secrets import SecretBox
from tests.conftest import ENCRYPTION_KEY, refusal, written
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
    assert proposed["company_name"] == "survivor"  # both set: the value of the record that stays
    assert proposed["email"] == "survivor" and proposed["primary_phone"] == "other"
    assert plan.moves["contacts"] == 1 and plan.moves["requests"] == 1 and plan.moves["computers"] == 1
    event = written(session, lambda: merge_customers(session, maintainer, survivor, other, BOX,
                                                     choices={"company_name": "survivor"}, decisions={}))
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
    company = new_customer(kind=CustomerKind.COMPANY, company_name="Malá s.r.o.",
                           contacts=[{"last_name": "Malá", "email": "office@mala.sk"}])
    with pytest.raises(DomainError, match="cannot be merged"):
        merge_plan(session, maintainer, eva, company, BOX)
    written(session, lambda: merge_customers(session, maintainer, eva, eva2, BOX, choices={}, decisions={}))
    session.expire_all()
    assert session.get(Customer, eva.id).title == "Accountant"
    assert session.get(Customer, eva.id).email == "eva@example.sk"
    with pytest.raises(DomainError, match="already merged"):
        merge_plan(session, maintainer, eva, eva2, BOX)  # merge another one in, not this one again


def test_conflicts_must_be_decided_before_anything_is_written(session, maintainer, pair, operator):
    survivor, other = pair
    for customer, password in ((survivor, "first-pass"), (other, "second-pass")):
        written(session, lambda c=customer, p=password: (
            save_customer_settings(session, c, operator, BOX, {"cmonitor_password": p}),
            create_portal_account(session, c, maintainer, username=f"portal-{c.id}",
                                  password="a long portal password", security_group=None)))
    plan = merge_plan(session, maintainer, survivor, other, BOX)
    assert set(plan.conflicts) == {"portal", "cmonitor_password"}
    errors = refusal(session, lambda: merge_customers(session, maintainer, survivor, other, BOX, choices={},
                                                      decisions={"portal": "other"}))
    assert "C-Monitor access passwords" in " ".join(errors["__form__"])
    session.expire_all()
    assert session.get(Customer, other.id).merged_into_id is None
    assert session.scalar(select(Contact.customer_id).where(Contact.last_name == "Nová")) == other.id
    written(session, lambda: merge_customers(
        session, maintainer, session.get(Customer, survivor.id), session.get(Customer, other.id), BOX,
        choices={}, decisions={"portal": "other", "cmonitor_password": "other"}))
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
        written(session, lambda: merge_customers(session, operator, survivor, other, BOX, choices={},
                                                 decisions={}))


def test_undo_restores_both_until_the_survivor_changes(session, maintainer, pair, operator):
    survivor, other = pair
    event = written(session, lambda: merge_customers(session, maintainer, survivor, other, BOX, choices={},
                                                     decisions={}))
    refusal(session, lambda: undo_merge(session, operator, event), PermissionDenied)
    written(session, lambda: undo_merge(session, maintainer, session.get(AuditEvent, event.id)))
    session.expire_all()
    back = session.get(Customer, other.id)
    assert back.merged_into_id is None and back.status.is_active and back.company_name == "ACME s.r.o."
    assert session.get(Customer, survivor.id).company_name == "ACME"
    assert [c.last_name for c in back.contacts] == ["Nová"]
    assert session.scalar(select(Request.customer_id)) == other.id
    assert sorted(c.hostname for c in session.scalars(select(Computer))) == ["pc-1", "pc-1"]
    with pytest.raises(DomainError, match="can still be undone"):
        written(session, lambda: undo_merge(session, maintainer, session.get(AuditEvent, event.id)))

    again = written(session, lambda: merge_customers(session, maintainer, session.get(Customer, survivor.id),
                                                     back, BOX, choices={}, decisions={}))
    kept = session.get(Customer, survivor.id)
    kept.notes = "changed after the merge"
    session.commit()
    with pytest.raises(DomainError, match="changed after the merge"):
        written(session, lambda: undo_merge(session, maintainer, session.get(AuditEvent, again.id)))


def test_old_links_and_api_ids_lead_to_the_survivor(app, session, maintainer, maintainer_client, pair):
    survivor, other = pair
    written(session, lambda: merge_customers(session, maintainer, survivor, other, BOX,
                                             choices={"company_name": "survivor"}, decisions={}))
    answer = maintainer_client.get(f"/admin/customers/details/?id={other.id}")
    assert answer.status_code == 302 and answer.headers["Location"].endswith(f"id={survivor.id}")
    listing = maintainer_client.get("/admin/customers/").get_data(as_text=True)
    assert "ACME s.r.o." not in listing  # the pointer record leaves lists
    from services.api_tokens import create_token
    api = Api(app.test_client(), written(session, lambda: create_token(session, maintainer, "t"))[1])
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
    html = maintainer_client.get(f"/admin/customers/overview/?id={survivor.id}").get_data(as_text=True)
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

    from services.computers import rotate_registration_key

    survivor, other = pair
    key = written(session, lambda: rotate_registration_key(session, maintainer, survivor))
    written(session, lambda: save_customer_settings(session, survivor, maintainer, BOX,
                                                    {"cmonitor_password": "agent-secret"}))
    new_customer(kind=CustomerKind.COMPANY, company_name="Foreign Firm",
                 contacts=[{"last_name": "Cudzí", "email": "cudzi@foreign.sk"}])
    written(session, lambda: merge_customers(session, maintainer, survivor, other, BOX,
                                             choices={"company_name": "survivor"}, decisions={}))
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


@pytest.mark.parametrize("survivor_ids,other_ids", [
    ({"vat_id": "SK2020111222", "registration_number": "50111222"},
     {"vat_id": "SK2020333444", "registration_number": "50333444"}),  # both, different
    ({}, {"vat_id": "SK2020333444", "registration_number": "50333444"}),  # only the other has them
    ({"vat_id": "SK2020111222"}, {}),  # only the survivor
])
def test_companies_with_and_without_vat_and_company_ids_merge_in_the_panel(
        maintainer_client, session, new_customer, survivor_ids, other_ids):
    # Issue 18: the merge page answered 500 ("'Customer' object has no attribute 'vat'") for
    # companies whose VAT IDs differ.
    first = new_customer(kind=CustomerKind.COMPANY, company_name="Beta Trade", **survivor_ids,
                         contacts=[{"last_name": "Prvý", "email": "prvy@beta.sk"}])
    second = new_customer(kind=CustomerKind.COMPANY, company_name="Beta Trade s.r.o.", **other_ids,
                          contacts=[{"last_name": "Druhý", "email": "druhy@beta.sk"}])
    url = f"/admin/customers/merge/?survivor={first.id}&other={second.id}"
    page = maintainer_client.get(url)
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "VAT ID" in html if (survivor_ids or other_ids).get("vat_id") else True
    for value in [*survivor_ids.values(), *other_ids.values()]:
        assert value in html
    done = maintainer_client.submit(url, {
        "survivor": str(first.id), "other": str(second.id), "survivor_version": str(first.version),
        "other_version": str(second.version), **{f"field_{name}": "other" for name in other_ids}})
    assert done.status_code == 302, done.get_data(as_text=True)
    assert "/merge/done/" in done.headers["Location"]
    session.expire_all()
    kept, gone = session.get(Customer, first.id), session.get(Customer, second.id)
    for field in ("vat_id", "registration_number"):
        expected = other_ids.get(field) or survivor_ids.get(field)
        assert getattr(kept, field) == expected
        if other_ids.get(field):
            assert getattr(gone, field) is None  # the tombstone gave the unique key up
    assert sorted(c.last_name for c in kept.contacts) == ["Druhý", "Prvý"]
    assert maintainer_client.get(done.headers["Location"]).status_code == 200
    undo_url = done.headers["Location"].replace("/done/", "/undo/")
    assert maintainer_client.submit(done.headers["Location"], {}, post_url=undo_url).status_code == 302
    session.expire_all()
    for customer, ids in ((first, survivor_ids), (second, other_ids)):
        back = session.get(Customer, customer.id)
        assert (back.vat_id, back.registration_number) == (ids.get("vat_id"), ids.get("registration_number"))


def test_merge_pages_follow_the_loader(operator_client, maintainer_client, session, pair, new_customer,
                                       make_operator, maintainer):
    survivor, other = pair
    stranger = make_operator("stranger@example.com")
    foreign = new_customer(kind=CustomerKind.COMPANY, company_name="ACME Foreign", operators=[stranger],
                           contacts=[{"last_name": "Cudzí", "email": "cudzi@foreign.sk"}])
    # Not viewable: 404 (its existence is not revealed), before anything else is looked at.
    assert operator_client.get(f"/admin/customers/merge/?survivor={foreign.id}").status_code == 404
    assert operator_client.get(f"/admin/customers/merge/?survivor={survivor.id}&other={foreign.id}"
                               ).status_code == 404
    written(session, lambda: merge_customers(session, maintainer, survivor, other, BOX,
                                             choices={"company_name": "survivor"}, decisions={}))
    # A merged-away record is not silently replaced by its survivor in a merge.
    again = maintainer_client.get(f"/admin/customers/merge/?survivor={other.id}")
    assert again.status_code == 409 and "already merged" in again.get_data(as_text=True)
