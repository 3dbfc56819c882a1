"""Property-based: whatever is typed into the customer and contact forms, the answer is a page
(200), a redirect (302) or a refusal (4xx) — never a 500 — and a refused save changes nothing."""

from __future__ import annotations

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from models import AuditEvent, Contact, Customer
from models.enums import CustomerKind

TYPED = st.one_of(
    st.text(max_size=300),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=40),
    st.sampled_from(["", " ", "\x00", "0", "-1", "99999999999999999999", "company", "person", "y",
                     "__None", "+421 903 123 456", "a@b", "<script>alert(1)</script>", "'; DROP TABLE x;--"]),
)
CUSTOMER_FIELDS = ["kind", "company_name", "registration_number", "vat_id", "first_name", "middle_name",
                   "last_name", "employee_type", "title", "department", "manager", "status", "sla_level",
                   "site", "building", "location_code", "primary_phone", "primary_phone_type",
                   "secondary_phone", "secondary_phone_type", "email", "secondary_email", "notes",
                   "workgroups", "version_seen", "contacts-0-last_name", "contacts-0-email",
                   "contacts-0-phone", "contacts-0-phone_type", "contacts-0-is_main"]
CONTACT_FIELDS = ["customer", "first_name", "last_name", "email", "phone", "phone_type", "title",
                  "is_main", "version_seen"]
FUZZ = settings(max_examples=25, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def snapshot(session):
    session.expire_all()
    customers = session.query(Customer).order_by(Customer.id)
    return (session.query(Contact).count(), [(c.id, c.display_name, c.email, c.version) for c in customers])


def fields(names):
    return st.fixed_dictionaries({}, optional={name: TYPED for name in names})


@FUZZ
@given(data=fields(CUSTOMER_FIELDS))
def test_customer_create_form_never_fails(maintainer_client, session, data):
    before = snapshot(session)
    response = maintainer_client.submit("/admin/customers/new/", data)
    assert response.status_code in (200, 302) or 400 <= response.status_code < 500, response.status_code
    if response.status_code != 302:
        assert snapshot(session) == before


@FUZZ
@given(data=fields(CUSTOMER_FIELDS))
def test_customer_edit_form_never_fails(maintainer_client, session, new_customer, data):
    existing = session.query(Customer).filter_by(company_name="Fuzz Target").one_or_none() or new_customer(
        kind=CustomerKind.COMPANY, company_name="Fuzz Target", email="target@example.sk")
    before, events = snapshot(session), session.query(AuditEvent).count()
    response = maintainer_client.submit(f"/admin/customers/edit/?id={existing.id}", data)
    assert response.status_code in (200, 302) or 400 <= response.status_code < 500, response.status_code
    if response.status_code != 302:
        assert snapshot(session) == before and session.query(AuditEvent).count() == events


@FUZZ
@given(data=fields(CONTACT_FIELDS))
def test_contact_form_never_fails(maintainer_client, session, new_customer, data):
    company = session.query(Customer).filter_by(company_name="Fuzz Co").one_or_none() or new_customer(
        kind=CustomerKind.COMPANY, company_name="Fuzz Co")
    data = {"customer": str(company.id), **data}
    before = snapshot(session)
    response = maintainer_client.submit("/admin/contacts/new/", data)
    assert response.status_code in (200, 302) or 400 <= response.status_code < 500, response.status_code
    if response.status_code != 302:
        assert snapshot(session) == before


QUICK_FIELDS = ["kind", "name", "email", "phone", "confirm_duplicate", "contacts-0-first_name",
                "contacts-0-last_name", "contacts-0-email", "contacts-0-phone", "contacts-0-is_main",
                "contacts-1-last_name", "contacts-1-email"]


@FUZZ
@given(data=fields(QUICK_FIELDS), kind=st.sampled_from(["company", "person"]))
def test_quick_form_answers_json_and_never_fails(maintainer_client, session, data, kind):
    before = snapshot(session)
    response = maintainer_client.submit("/admin/customers/", {"kind": kind, **data},
                                        post_url="/admin/customers/quick/create")
    assert response.status_code in (201, 409, 422), response.status_code
    body = response.get_json()
    assert body["ok"] is (response.status_code == 201)
    if response.status_code != 201:
        assert snapshot(session) == before
    elif kind == "company":
        assert body["contacts"] >= 1  # never a company without its contact


LIVE_FIELDS = ["kind", "name", "email", "phone", "registration_number", "vat_id"]


@FUZZ
@given(data=fields(LIVE_FIELDS))
@example(data={"name": "Žilinská", "registration_number": "50 111 222"})
@example(data={"name": "zilinska fuzz", "email": "FUZZ@example.sk", "kind": "person"})
def test_the_live_duplicate_list_answers_whatever_is_typed(operator_client, session, new_customer, data):
    """The quick form's search while typing, as an operator: any text, any length, any kind —
    a list (never a 500), nothing written, no hidden record's name given away."""
    if not session.query(Customer).filter_by(company_name="Žilinská Fuzz s.r.o.").count():
        new_customer(kind=CustomerKind.COMPANY, company_name="Žilinská Fuzz s.r.o.", email="fuzz@example.sk",
                     registration_number="50111222")
    before = snapshot(session)
    response = operator_client.get("/admin/customers/quick/candidates", query_string=data)
    assert response.status_code == 200, response.status_code
    candidates = response.get_json()["candidates"]
    for candidate in candidates:
        assert not candidate["visible"] and candidate["score"] is None and "Fuzz" not in str(candidate)
    if data.get("email") == "FUZZ@example.sk" or data.get("registration_number") == "50 111 222":
        assert len(candidates) == 1  # the key says a record exists, and whom to ask
    assert snapshot(session) == before


def test_control_characters_are_refused_with_a_message_not_a_database_error(maintainer_client, session):
    from services.customers import default_status

    response = maintainer_client.submit("/admin/customers/new/", {
        "kind": "company", "company_name": "Null\x00Byte", "status": str(default_status(session).id)})
    assert response.status_code == 200
    assert "control characters" in response.get_data(as_text=True)
    assert session.query(Customer).count() == 0


@FUZZ
@given(search=TYPED, flt=TYPED, page=TYPED, sort=TYPED)
def test_list_search_filters_and_paging_never_fail(maintainer_client, search, flt, page, sort):
    response = maintainer_client.get("/admin/customers/", query_string={
        "search": search, "flt0_3": flt, "page": page, "sort": sort})
    assert response.status_code in (200, 302) or 400 <= response.status_code < 500
    lookup = maintainer_client.get("/admin/customers/ajax/lookup/", query_string={
        "name": "manager", "query": search})
    assert lookup.status_code in (200, 400)
