"""Each 500 the attack found, as the request that caused it, on both databases: absurd input is
answered with a page, a refusal or a 404 — never a server error — and says no more than a valid
request would."""

from __future__ import annotations

import re

from admin_views.audit import AuditEventView
from models import Customer, Request
from models.enums import CustomerKind, RequestStatus
from services.merge import merge_plan
from services.transactions import unit_of_work

HUGE = ["2147483648", "9223372036854775808", "100000000000000000000"]


def no_500(response):
    assert response.status_code < 500, response.status_code
    return response


LISTS = ["/admin/customers/", "/admin/contacts/", "/admin/requests/", "/admin/operators/", "/admin/audit/",
         "/admin/sites/", "/admin/teams/", "/admin/directory/", "/admin/customer-statuses/"]


def test_a_nul_or_control_character_in_a_list_search_is_no_error(maintainer_client):
    for path in LISTS:
        for term in ("a\x00b", "\x00", "\x01\x1f\x7f", "\u202eabc", "😀" * 50, "x" * 5000):
            response = maintainer_client.get(path, query_string={"search": term})
            assert response.status_code == 200, (path, term, response.status_code)


# The request form's "Assigned contacts" is no lookup since issue 18: it offers the chosen
# customer's contacts (requests.contacts_of_view, tests/test_permission_matrix.py).
AJAX = [("customers", "manager"), ("contacts", "customer"), ("requests", "customer"),
        ("directory", "target_company")]


def test_ajax_lookups_take_any_offset_and_limit(maintainer_client, new_customer):
    new_customer(kind=CustomerKind.PERSON, first_name="Anna", last_name="Fuzzová")
    for view, name in AJAX:
        for offset, limit in [("-1", "10"), ("100000000000000000000", "10"), ("0", "-1"),
                              ("0", "100000000000000000000"), ("x", "y"), ("-99999999999999999999", "0")]:
            response = no_500(maintainer_client.get(f"/admin/{view}/ajax/lookup/", query_string={
                "name": name, "query": "a\x00", "offset": offset, "limit": limit}))
            assert response.status_code == 200 and isinstance(response.get_json(), list)
            assert len(response.get_json()) <= 50
    first = maintainer_client.get("/admin/customers/ajax/lookup/", query_string={
        "name": "manager", "query": "Fuzzová", "offset": "-1"}).get_json()
    assert [label for _, label in first] == ["Fuzzová, Anna"]  # out of range: from the start


def test_ids_beyond_the_database_integers_are_not_found(maintainer_client):
    for huge in HUGE:
        for path, method in [(f"/admin/customers/merge/done/{huge}", "GET"),
                             (f"/admin/customers/merge/undo/{huge}", "POST"),
                             (f"/admin/customers/wizard/{huge}/customer", "GET"),
                             (f"/admin/customers/wizard/{huge}/discard", "POST"),
                             (f"/admin/directory/runs/{huge}.json", "GET"),
                             (f"/admin/directory/start/{huge}", "POST"),
                             (f"/admin/customers/photo-file/{huge}/small", "GET")]:
            response = maintainer_client.open(path, method=method)
            assert response.status_code in (400, 404), (path, response.status_code)


def test_the_api_document_says_how_large_an_id_may_be(maintainer_client):
    document = maintainer_client.get("/api/v1/openapi.json").get_json()
    parameter = document["paths"]["/api/v1/customers/{customer_id}"]["parameters"][0]
    assert parameter["schema"] == {"type": "integer", "minimum": 0, "maximum": 2**31 - 1}


def test_the_audit_trails_record_id_filter_takes_any_text(maintainer_client, new_customer):
    customer = new_customer(kind=CustomerKind.PERSON, first_name="Ida", last_name="Auditová")
    index = [str(f.name) for f in AuditEventView.column_filters].index("Record id")
    found = maintainer_client.get("/admin/audit/", query_string={f"flt0_{index}": str(customer.id)})
    assert found.status_code == 200 and "Auditová" in found.get_data(as_text=True)
    for value in ("abc", "-1", "1.5", "\x00", "99999999999999999999", ""):
        assert no_500(maintainer_client.get("/admin/audit/", query_string={f"flt0_{index}": value})
                      ).status_code == 200


def test_list_paging_sorting_and_filters_take_any_value(app, maintainer_client):
    views = {view.url: view for view in app.extensions["admin"][0]._views}
    for path in LISTS:
        for value in ["-1", "100000000000000000000", "x"]:
            for params in [{"page": value}, {"sort": value}, {"sort": "999", "desc": value},
                           {"page_size": value}, {"page": value, "page_size": value, "sort": "0"}]:
                response = maintainer_client.get(path, query_string=params)
                assert response.status_code == 200, (path, params, response.status_code)
        for index in range(len(views[path.rstrip("/")]._filters or [])):
            for value in ("abc", "-1", "99999999999999999999", "\x00", "2026-13-45 to x",
                          "2026-01-01 00:00:00 to 2027-01-01 00:00:00"):
                response = maintainer_client.get(path, query_string={f"flt0_{index}": value})
                assert response.status_code == 200, (path, index, value, response.status_code)


def test_merging_a_person_into_their_own_manager_is_refused_with_a_message(
        session, maintainer, maintainer_client, new_customer):
    boss = new_customer(kind=CustomerKind.PERSON, first_name="Boris", last_name="Šéf")
    clerk = new_customer(kind=CustomerKind.PERSON, first_name="Boris", last_name="Sef", manager=boss)
    box = maintainer_client.client.application.extensions["secret_box"]
    plan = merge_plan(session, maintainer, boss, clerk, box)
    # A manager who is one of the two is never offered: the survivor cannot become their own.
    assert "manager_id" not in {c.name for c in plan.fields}
    page = maintainer_client.get("/admin/customers/merge/", query_string={
        "survivor": boss.id, "other": clerk.id})
    token = page.get_data(as_text=True).split('name="csrf_token"')[1].split('value="')[1].split('"')[0]
    answer = maintainer_client.post("/admin/customers/merge/", data={
        "csrf_token": token, "survivor": boss.id, "other": clerk.id,
        "survivor_version": boss.version, "other_version": clerk.version})  # the proposed values
    assert answer.status_code == 302
    session.expire_all()
    assert session.get(Customer, boss.id).manager_id is None
    assert session.get(Customer, clerk.id).merged_into_id == boss.id


def test_choosing_the_others_manager_when_it_is_the_survivor_never_makes_anyone_their_own_manager(
        session, maintainer, maintainer_client, new_customer):
    boss = new_customer(kind=CustomerKind.PERSON, first_name="Boris", last_name="Šéf")
    clerk = new_customer(kind=CustomerKind.PERSON, first_name="Boris", last_name="Sef", manager=boss)
    page = maintainer_client.get("/admin/customers/merge/", query_string={"survivor": boss.id,
                                                                          "other": clerk.id})
    assert page.status_code == 200
    token = page.get_data(as_text=True).split('name="csrf_token"')[1].split('value="')[1].split('"')[0]
    # A forged choice of a field the page does not offer is not taken.
    answer = maintainer_client.post("/admin/customers/merge/", data={
        "csrf_token": token, "survivor": boss.id, "other": clerk.id, "field_manager_id": "other",
        "survivor_version": boss.version, "other_version": clerk.version})
    assert answer.status_code in (200, 302)
    session.expire_all()
    kept = session.get(Customer, boss.id)
    assert kept.manager_id is None or kept.manager_id != kept.id


def test_the_manager_picker_tells_nothing_about_records_the_operator_may_not_view(
        app, operator, operator_client, maintainer, maintainer_client, new_customer, session):
    hidden = new_customer(maintainer, kind=CustomerKind.PERSON, first_name="Mara", last_name="Skrytá")
    stranger = new_customer(maintainer, kind=CustomerKind.PERSON, first_name="Mike", last_name="Cudzí")
    foreign = new_customer(maintainer, kind=CustomerKind.PERSON, first_name="Fero", last_name="Foreign",
                           manager=stranger)
    own = new_customer(operator, kind=CustomerKind.PERSON, first_name="Alena", last_name="Vlastná",
                       manager=hidden)
    page = operator_client.get(f"/admin/customers/edit/?id={own.id}").get_data(as_text=True)
    assert "(restricted)" in page and "Skrytá" not in page
    assert manager_input(page) == "kept"  # not even its id: the form says "keep it"

    def post(url, manager, version=None):
        return operator_client.submit(f"/admin/customers/edit/?id={own.id}", {
            "kind": "person", "first_name": "Alena", "last_name": "Vlastná", "manager": str(manager),
            "status": str(own.status_id), "version_seen": str(version or own.version)}, post_url=url)

    # Posting the real id of the hidden manager, of another hidden person or of no one at all:
    # one and the same refusal, so the answer does not say who manages whom.
    answers = [post(f"/admin/customers/edit/?id={own.id}", manager) for manager in
               (hidden.id, stranger.id, 2**31 - 1)]
    assert {a.status_code for a in answers} == {200}
    assert all("Not one of the records you can choose here." in a.get_data(as_text=True) for a in answers)
    # A foreign ?id= on the URL: the record is not found, nothing is picked or written.
    for url in (f"/admin/customers/edit/?id={foreign.id}",
                f"/admin/customers/edit/?id={foreign.id}&id={own.id}"):
        assert post(url, "kept").status_code == 404
        assert post(url, stranger.id).status_code == 404
    created = operator_client.submit("/admin/customers/new/", {
        "kind": "person", "first_name": "Nový", "last_name": "Človek", "manager": "kept",
        "status": str(own.status_id)}, post_url=f"/admin/customers/new/?id={foreign.id}")
    assert "Not one of the records you can choose here." in created.get_data(as_text=True)
    session.expire_all()
    assert session.query(Customer).filter_by(last_name="Človek").count() == 0
    # What the page rendered keeps the hidden manager; a maintainer sees and picks real ids.
    assert post(f"/admin/customers/edit/?id={own.id}", "kept").status_code == 302
    session.expire_all()
    assert session.get(Customer, own.id).manager_id == hidden.id
    assert session.get(Customer, foreign.id).manager_id == stranger.id
    assert manager_input(maintainer_client.get(f"/admin/customers/edit/?id={own.id}").get_data(
        as_text=True)) == str(hidden.id)


def manager_input(html: str) -> str:
    tag = re.search(r'<input[^>]*name="manager"[^>]*>', html).group(0)
    return re.search(r'value="([^"]*)"', tag).group(1)


def test_a_nul_in_any_text_is_a_message_not_a_database_error(app, operator, operator_client, session,
                                                             new_customer):
    """PostgreSQL refuses NUL in text: the last guard before the database (services.limits) says
    so on the form, and the wizard's company ID is checked before it is looked up."""
    from werkzeug.datastructures import MultiDict

    from tests.test_fuzz_panel import rendered_form
    from wizards import drafts

    own = new_customer(kind=CustomerKind.COMPANY, company_name="Nulová s.r.o.", operators=[operator])
    with unit_of_work(session):
        request = Request(customer_id=own.id, subject="Printer", status=RequestStatus.NEW)
        session.add(request)
        draft = drafts.start_draft(session, operator)
    for url, name in [(f"/admin/requests/edit/?id={request.id}", "description"),
                      (f"/admin/customers/wizard/{draft.id}/customer", "registration_number"),
                      (f"/admin/customers/wizard/{draft.id}/customer", "vat_id")]:
        base = rendered_form(operator_client, url)
        data = MultiDict([(n, "50\x00111" if n == name else v) for n, _, v in base])
        data.setlist("kind", ["company"])
        data.setlist("company_name", ["Nulová 2 s.r.o."])
        response = operator_client.post(url, data=data)
        assert response.status_code == 200, (url, response.status_code)
        assert "Remove the control characters" in response.get_data(as_text=True), url
    session.expire_all()
    assert session.get(Request, request.id).description is None
