"""Operators, teams and lookup tables are for maintainers only — in the menu and on the server."""

import pytest

from models import SlaLevel

MAINTAINER_ONLY = ["operators", "teams", "customer-statuses", "sla-levels", "sites", "buildings",
                   "departments", "workgroups", "security-groups", "directory"]


def maintainer_only_urls(app):
    """Every URL of the maintainer-only views, read from the URL map so a new one is covered."""
    urls = []
    for rule in app.url_map.iter_rules():
        endpoint = rule.endpoint.split(".")[0]
        if endpoint in MAINTAINER_ONLY and not rule.arguments - {"id"}:
            urls.append((rule.rule, sorted(rule.methods - {"HEAD", "OPTIONS"})))
    return urls


def test_the_url_map_has_the_maintainer_only_views(app):
    endpoints = {url.split("/")[2] for url, _ in maintainer_only_urls(app)}
    assert endpoints == set(MAINTAINER_ONLY)


def test_operator_does_not_see_the_menus(operator_client):
    html = operator_client.get("/admin/").get_data(as_text=True)
    assert "/admin/customers/" in html and "/admin/contacts/" in html
    for endpoint in MAINTAINER_ONLY:
        assert f"/admin/{endpoint}/" not in html
    assert "Lookups" not in html and "Staff" not in html


def test_maintainer_sees_the_menus(maintainer_client):
    html = maintainer_client.get("/admin/").get_data(as_text=True)
    for endpoint in MAINTAINER_ONLY:
        assert f"/admin/{endpoint}/" in html


def test_operator_is_refused_every_maintainer_only_url(app, operator_client, session):
    from tests.conftest import csrf_from

    token = csrf_from(operator_client.get("/admin/").get_data(as_text=True))
    gold = SlaLevel(name="Gold")
    session.add(gold)
    session.commit()
    checked = 0
    for url, methods in maintainer_only_urls(app):
        for method in methods:
            data = {"csrf_token": token, "id": str(gold.id), "name": "Hacked"}
            response = operator_client.open(url, method=method, data=data,
                                                   query_string={"id": gold.id})
            assert response.status_code == 403, (method, url)
            checked += 1
    assert checked > 30
    session.expire_all()
    assert session.get(SlaLevel, gold.id).name == "Gold"


def test_anonymous_is_sent_to_sign_in_from_maintainer_only_views(client):
    response = client.get("/admin/sla-levels/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


@pytest.mark.parametrize("endpoint", ["sla-levels", "departments", "workgroups", "security-groups"])
def test_maintainer_manages_lookups(maintainer_client, session, endpoint):
    response = maintainer_client.submit(f"/admin/{endpoint}/new/", {"name": "Platinum"})
    assert response.status_code == 302
    listing = maintainer_client.get(f"/admin/{endpoint}/").get_data(as_text=True)
    assert "Platinum" in listing


def test_lookup_in_use_is_not_deleted_with_a_message(maintainer_client, session, new_customer):
    from models.enums import CustomerKind

    gold = SlaLevel(name="Gold")
    session.add(gold)
    session.commit()
    new_customer(kind=CustomerKind.COMPANY, company_name="ACME", sla_level=gold)
    response = maintainer_client.submit("/admin/sla-levels/", {"id": str(gold.id)},
                                        post_url="/admin/sla-levels/delete/", follow_redirects=True)
    assert "still in use" in response.get_data(as_text=True)
    assert session.get(SlaLevel, gold.id) is not None


def test_maintainer_creates_an_operator_who_can_sign_in(maintainer_client, app, session):
    from models import Operator
    from tests.conftest import Browserless

    response = maintainer_client.submit("/admin/operators/new/", {
        "email": "New.Person@Example.com", "first_name": "New", "last_name": "Person",
        "role": "operator", "is_active": "y", "password": "short"})
    assert "at least 10 characters" in response.get_data(as_text=True)
    response = maintainer_client.submit("/admin/operators/new/", {
        "email": "New.Person@Example.com", "first_name": "New", "last_name": "Person",
        "role": "operator", "is_active": "y", "password": "a long enough password"})
    assert response.status_code == 302
    operator = session.query(Operator).filter_by(email="new.person@example.com").one()
    assert "a long enough password" not in operator.password_hash
    assert Browserless(app.test_client()).login("new.person@example.com",
                                                "a long enough password").status_code == 302
    again = maintainer_client.submit("/admin/operators/new/", {
        "email": "new.person@example.com", "first_name": "Copy", "last_name": "Cat",
        "role": "operator", "password": "another long password"})
    assert "Another operator already signs in with this e-mail." in again.get_data(as_text=True)


def test_last_active_maintainer_cannot_lock_everyone_out(maintainer_client, maintainer, session):
    response = maintainer_client.submit(f"/admin/operators/edit/?id={maintainer.id}", {
        "email": maintainer.email, "first_name": "Mia", "last_name": "Maintainer",
        "role": "operator", "is_active": "y", "version_seen": str(maintainer.version)})
    assert "last active maintainer" in response.get_data(as_text=True)
    session.expire_all()
    assert session.get(type(maintainer), maintainer.id).is_maintainer


def test_exactly_one_default_status(maintainer_client, session):
    from models import CustomerStatus

    active = session.query(CustomerStatus).filter_by(name="Active").one()
    response = maintainer_client.submit(f"/admin/customer-statuses/edit/?id={active.id}",
                                        {"name": "Active", "is_active": "y"})
    assert "One status must stay the default" in response.get_data(as_text=True)
    response = maintainer_client.submit("/admin/customer-statuses/new/",
                                        {"name": "Prospect", "is_default": "y", "is_active": "y"})
    assert response.status_code == 302
    session.expire_all()
    defaults = session.query(CustomerStatus).filter_by(is_default=True).all()
    assert [s.name for s in defaults] == ["Prospect"]
