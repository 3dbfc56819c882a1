"""The customer portal (/portal) as its users meet it: signing in with the first password and
being made to choose their own, seeing exactly the requests their place and security group give
them, raising one, commenting, accepting with a rating or reopening, rating later; and what must
never happen — a session of the panel opening the portal or the other way round, a planted cookie
surviving the sign-in, an old session outliving a password change, a disabled account getting in,
a sign-in sending anybody off the portal, another customer's request showing."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from models import AuditEvent, PortalAccount, Request, RequestComment, SecurityGroup
from models.enums import CustomerKind, RequestSource, RequestStatus
from services.discussion import Author, add_comment, raise_request
from services.portal import reset_portal_password, set_portal_access_enabled
from services.portal_sessions import issue
from tests.conftest import written
from tests.portal_helpers import FIRST, OWN, PortalClient, complete, desk_request, give_access
from tests.served_app import page_text


@pytest.fixture
def acme(new_customer, operator):
    return new_customer(kind=CustomerKind.COMPANY, company_name="Acme", operators=[operator], contacts=[
        {"first_name": "Mia", "last_name": "Main", "email": "mia@acme.sk", "is_main": True},
        {"first_name": "Cyril", "last_name": "Contact", "email": "cyril@acme.sk"},
        {"first_name": "Dana", "last_name": "Other", "email": "dana@acme.sk"}])


@pytest.fixture
def eva(new_customer, operator):
    return new_customer(kind=CustomerKind.PERSON, first_name="Eva", last_name="Malá", email="eva@example.sk",
                        operators=[operator])


def contact(company, first):
    return next(c for c in company.contacts if c.first_name == first)


def text_of(response) -> str:
    return page_text(response.get_data(as_text=True))


# --- the first sign-in --------------------------------------------------------------------------

def test_the_first_sign_in_leads_to_choosing_an_own_password(app, session, eva):
    give_access(session, eva, "eva")
    portal = PortalClient(app)
    answer = portal.sign_in("eva")
    assert answer.status_code == 302 and answer.location.endswith("/portal/requests")
    for page in ("/portal/requests", "/portal/requests/new", "/portal/"):
        followed = portal.get(page, follow_redirects=True)
        assert "Choose your own password" in text_of(followed), page
    weak = portal.change_password(FIRST, "short")
    assert weak.status_code == 422 and "at least 10 characters" in text_of(weak)
    same = portal.change_password(FIRST, FIRST)
    assert "Choose a new password, not the one you have now." in text_of(same)
    wrong = portal.change_password("not my password", OWN)
    assert "This is not your current password." in text_of(wrong)
    assert OWN not in wrong.get_data(as_text=True)  # a typed password is never sent back
    done = portal.change_password(FIRST, OWN)
    assert done.status_code == 302
    page = portal.get("/portal/requests", follow_redirects=True)
    assert "Your password was changed." in text_of(page) and "No open requests." in text_of(page)
    session.expire_all()
    assert not session.scalar(select(PortalAccount)).must_change_password
    changed = session.scalar(select(AuditEvent).where(AuditEvent.action == "portal_password_change"))
    assert changed.entity_id == eva.id and OWN not in repr(changed.changes)


def test_after_a_reset_the_password_must_be_changed_again_and_old_sessions_end(app, session, eva):
    give_access(session, eva, "eva")
    portal = PortalClient(app).ready("eva")
    written(session, lambda: reset_portal_password(session, eva, None, "temporary pass 3"))
    assert portal.get("/portal/requests").location.startswith("/portal/sign-in")
    assert PortalClient(app).sign_in("eva", OWN).status_code == 422  # the old password is gone
    again = PortalClient(app)
    again.sign_in("eva", "temporary pass 3")
    assert again.get("/portal/requests").location.endswith("/portal/password")


# --- one session per browser, and only the portal's ---------------------------------------------

def test_an_operators_session_opens_nothing_on_the_portal(operator_client, app, session, eva):
    give_access(session, eva, "eva")
    for page in ("/portal/requests", "/portal/password", "/portal/requests/new"):
        assert operator_client.get(page).location.startswith("/portal/sign-in"), page
    assert "Sign in" in text_of(operator_client.get("/portal/sign-in"))


def test_a_portal_session_opens_nothing_in_the_panel(app, session, eva):
    give_access(session, eva, "eva")
    portal = PortalClient(app).ready("eva")
    for page in ("/admin/", "/admin/customers/", f"/admin/customers/portal/?id={eva.id}"):
        assert portal.get(page).location.startswith("/login"), page
    assert portal.get("/api/v1/customers").status_code == 401


def test_a_cookie_planted_before_the_sign_in_is_replaced(app, session, eva, new_customer):
    give_access(session, eva, "eva")
    other = new_customer(kind=CustomerKind.PERSON, first_name="Ivan", last_name="Attacker")
    attacker = give_access(session, other, "ivan")
    planted = issue(_keys(app), attacker)
    victim = PortalClient(app)
    victim.token()  # the sign-in page was open before the attacker's cookie came
    victim.plant(planted)
    victim.sign_in("eva")
    assert victim.cookie() not in (None, planted)
    victim.change_password()
    page = text_of(victim.get("/portal/requests"))
    assert "Eva" in page and "Ivan" not in page


def _keys(app):
    from services.portal_sessions import PortalSessionKeys

    return PortalSessionKeys(app.config["SECRET_KEY"], app.config["PORTAL_SESSION_HOURS"])


def test_a_password_change_ends_the_other_sessions_but_not_this_one(app, session, eva):
    give_access(session, eva, "eva")
    here = PortalClient(app).ready("eva")
    there = PortalClient(app)
    there.sign_in("eva", OWN)
    assert there.get("/portal/requests").status_code == 200
    assert here.change_password(OWN, "third password 33").status_code == 302
    assert here.get("/portal/requests").status_code == 200
    assert there.get("/portal/requests").location.startswith("/portal/sign-in")


def test_signing_out_ends_the_session_in_that_browser(app, session, eva):
    give_access(session, eva, "eva")
    portal = PortalClient(app).ready("eva")
    answer = portal.post("/portal/sign-out")
    assert answer.location.endswith("/portal/sign-in") and portal.cookie() is None
    assert portal.get("/portal/requests").location.startswith("/portal/sign-in")
    assert session.scalar(select(func.count()).where(AuditEvent.action == "portal_sign_out")) == 1


def test_a_disabled_account_is_signed_out_and_cannot_sign_in(app, session, eva):
    give_access(session, eva, "eva")
    portal = PortalClient(app).ready("eva")
    written(session, lambda: set_portal_access_enabled(session, eva, None, False))
    assert portal.get("/portal/requests").location.startswith("/portal/sign-in")
    refused = PortalClient(app).sign_in("eva", OWN)
    assert refused.status_code == 422 and "cannot sign in at the moment" in text_of(refused)


def test_posts_without_the_csrf_token_are_refused(app, session, eva):
    give_access(session, eva, "eva")
    portal = PortalClient(app).ready("eva")
    answer = portal.browser.post("/portal/requests/new", data={"subject": "Forged", "description": "x"})
    assert answer.status_code == 400 and "The form has expired" in text_of(answer)
    assert session.scalar(select(func.count(Request.id))) == 0
    sign_in = PortalClient(app).browser.post("/portal/sign-in", data={"username": "eva", "password": OWN})
    assert sign_in.status_code == 400


@pytest.mark.parametrize("target", [
    "https://evil.example/portal/", "//evil.example/portal/", "/\\evil.example", "/admin/",
    "/portal/../admin/", "/portal/%2e%2e/admin/", "javascript:alert(1)", "/portal/requests\r\nLocation: https://evil.example",
    "/portal/sign-out"])
def test_the_sign_in_sends_nobody_off_the_portal(app, session, eva, target):
    give_access(session, eva, "eva")
    portal = PortalClient(app)
    answer = portal.sign_in("eva", next_page=target)
    assert answer.status_code == 302 and answer.location == "/portal/requests"


def test_the_sign_in_goes_on_to_the_page_asked_for(app, session, eva, operator):
    give_access(session, eva, "eva")
    request = desk_request(session, operator, eva, "Printer")
    portal = PortalClient(app)
    first = portal.get(f"/portal/requests/{request.id}")
    assert first.location == f"/portal/sign-in?next=/portal/requests/{request.id}"
    assert portal.sign_in("eva", next_page=f"/portal/requests/{request.id}").location == \
        f"/portal/requests/{request.id}"


# --- what each account sees --------------------------------------------------------------------

def test_each_account_sees_the_requests_its_place_gives_it(app, session, acme, eva, operator):
    cyril, dana = contact(acme, "Cyril"), contact(acme, "Dana")
    assigned = desk_request(session, operator, acme, "Assigned to Cyril", [cyril])
    unassigned = desk_request(session, operator, acme, "Nobody's")
    private = desk_request(session, operator, eva, "Eva's laptop")
    give_access(session, acme, "acme")
    give_access(session, acme, "mia", contact=contact(acme, "Mia"))
    give_access(session, acme, "cyril", contact=cyril)
    everyone = SecurityGroup(name="Company-wide")
    everyone.may_see_all_requests = True
    session.add(everyone)
    session.commit()
    give_access(session, acme, "dana", contact=dana, group=everyone)
    give_access(session, eva, "eva")
    seen = {}
    for name in ("acme", "mia", "cyril", "dana", "eva"):
        page = text_of(PortalClient(app).ready(name).get("/portal/requests"))
        seen[name] = {r.subject for r in (assigned, unassigned, private) if r.subject in page}
    assert seen == {"acme": {"Assigned to Cyril", "Nobody's"}, "mia": {"Assigned to Cyril", "Nobody's"},
                    "cyril": {"Assigned to Cyril"}, "dana": {"Assigned to Cyril", "Nobody's"},
                    "eva": {"Eva's laptop"}}


def test_a_request_that_is_not_ones_own_is_not_found(app, session, acme, eva, operator):
    cyril = contact(acme, "Cyril")
    give_access(session, acme, "cyril", contact=cyril)
    give_access(session, eva, "eva")
    others = desk_request(session, operator, acme, "Company secret")
    portal = PortalClient(app).ready("eva")
    for page in (f"/portal/requests/{others.id}", f"/portal/requests/{others.id}/files/1",
                 "/portal/requests/999999", "/portal/requests/2147483648"):
        answer = portal.get(page)
        assert answer.status_code == 404 and "Company secret" not in text_of(answer), page
    for action, data in (("comment", {"body": "hi"}), ("accept", {"rating": "5"}),
                         ("reopen", {"comment": "x"}), ("rate", {"rating": "1"})):
        answer = portal.post(f"/portal/requests/{others.id}/{action}", data)
        assert answer.status_code == 404, action
    # A plain contact of the same company does not see an unassigned request either.
    assert PortalClient(app).ready("cyril").get(f"/portal/requests/{others.id}").status_code == 404
    session.expire_all()
    assert session.scalar(select(func.count(RequestComment.id))) == 0


def test_a_group_that_may_not_create_requests(app, session, acme):
    readers = SecurityGroup(name="Readers")
    readers.may_create_requests = False
    session.add(readers)
    session.commit()
    give_access(session, acme, "mia", contact=contact(acme, "Mia"), group=readers)
    portal = PortalClient(app).ready("mia")
    assert "New request" not in text_of(portal.get("/portal/requests"))
    assert portal.get("/portal/requests/new").status_code == 403
    refused = portal.post("/portal/requests/new", {"subject": "Sneaky", "description": "x"})
    assert refused.status_code == 403 and "may not create requests" in text_of(refused)
    assert session.scalar(select(func.count(Request.id))) == 0


def test_the_customer_never_sees_internal_notes(app, session, eva, operator):
    give_access(session, eva, "eva")
    request = desk_request(session, operator, eva, "VPN")
    desk = Author.of_operator(operator)
    written(session, lambda: add_comment(session, request, desk, "Customer is grumpy", internal=True))
    written(session, lambda: add_comment(session, request, desk, "We are on it."))
    page = text_of(PortalClient(app).ready("eva").get(f"/portal/requests/{request.id}"))
    assert "We are on it." in page and "grumpy" not in page


# --- raising, discussing, accepting ---------------------------------------------------------------

def test_a_contact_raises_a_request_discusses_accepts_and_rates(app, session, acme, operator):
    give_access(session, acme, "cyril", contact=contact(acme, "Cyril"))
    portal = PortalClient(app).ready("cyril")
    empty = portal.post("/portal/requests/new", {"subject": "  ", "description": "Paper jam"})
    assert empty.status_code == 422 and "A request needs a subject." in text_of(empty)
    assert "Paper jam" in empty.get_data(as_text=True)  # what was typed stays
    made = portal.post("/portal/requests/new", {"subject": "Printer jams", "description": "Paper jam\nagain"})
    request = session.scalar(select(Request))
    assert made.location == f"/portal/requests/{request.id}"
    assert (request.source, request.requester_contact.first_name) == (RequestSource.PORTAL, "Cyril")
    assert portal.post(f"/portal/requests/{request.id}/comment", {"body": "It is urgent."}).status_code == 302
    blank = portal.post(f"/portal/requests/{request.id}/comment", {"body": ""})
    assert blank.status_code == 422 and "Write a comment." in text_of(blank)
    early = portal.post(f"/portal/requests/{request.id}/accept", {"rating": "5"})
    assert "Only a completed request can be accepted" in text_of(early)
    complete(session, operator, request)
    page = text_of(portal.get(f"/portal/requests/{request.id}"))
    assert "Completed" in page and "Fixed it." in page and "Accept the completion" in page
    bad = portal.post(f"/portal/requests/{request.id}/accept", {"rating": "9", "remark": "??"})
    assert "Choose 1 to 5 stars." in text_of(bad)
    accepted = portal.post(f"/portal/requests/{request.id}/accept",
                           {"rating": "4", "remark": "Quick, thanks"})
    assert accepted.status_code == 302
    session.expire_all()
    request = session.get(Request, request.id)
    assert (request.status, request.rating, request.rating_remark) == \
        (RequestStatus.CLOSED, 4, "Quick, thanks")
    page = text_of(portal.get(f"/portal/requests/{request.id}"))
    assert "Accepted" in page and "Your rating: ★★★★☆" in page and "How did the service desk do?" not in page
    history = [(c.old_status, c.new_status) for c in request.status_changes]
    assert history[-1] == (RequestStatus.RESOLVED, RequestStatus.CLOSED)


def test_a_private_person_accepts_without_rating_and_rates_later(app, session, eva, operator):
    give_access(session, eva, "eva")
    portal = PortalClient(app).ready("eva")
    portal.post("/portal/requests/new", {"subject": "Laptop slow", "description": ""})
    request = session.scalar(select(Request))
    assert request.customer_id == eva.id and request.requester_contact_id is None
    complete(session, operator, request)
    assert portal.post(f"/portal/requests/{request.id}/accept", {}).status_code == 302
    assert "How did the service desk do?" in text_of(portal.get(f"/portal/requests/{request.id}"))
    assert portal.post(f"/portal/requests/{request.id}/rate", {"rating": "5"}).status_code == 302
    twice = portal.post(f"/portal/requests/{request.id}/rate", {"rating": "1"})
    assert "rated already" in text_of(twice)
    session.expire_all()
    assert session.get(Request, request.id).rating == 5


def test_reopening_needs_a_comment(app, session, eva, operator):
    give_access(session, eva, "eva")
    request = desk_request(session, operator, eva, "Mail down")
    complete(session, operator, request)
    portal = PortalClient(app).ready("eva")
    bare = portal.post(f"/portal/requests/{request.id}/reopen", {"comment": " "})
    assert bare.status_code == 422 and "reopening needs a comment" in text_of(bare)
    assert portal.post(f"/portal/requests/{request.id}/reopen", {"comment": "Still down"}).status_code == 302
    session.expire_all()
    assert session.get(Request, request.id).status == RequestStatus.REOPENED
    assert "Still down" in text_of(portal.get(f"/portal/requests/{request.id}"))


def test_the_list_pages_and_filters(app, session, eva):
    give_access(session, eva, "eva")
    author = None

    def raise_many():
        nonlocal author
        author = Author.of_portal(session.scalar(select(PortalAccount)))
        for n in range(30):
            raise_request(session, author, f"Request number {n}", None, source=RequestSource.PORTAL,
                          notify=False)

    written(session, raise_many)
    portal = PortalClient(app).ready("eva")
    first = text_of(portal.get("/portal/requests"))
    assert "Request number 29" in first and "Request number 4 " not in first and "Page 1 of 2" in first
    assert "Request number 4 " in text_of(portal.get("/portal/requests?page=2")) + " "
    for hostile in ("?page=-1", "?page=99999999999", "?show=<script>", "?page=x&show=all"):
        assert portal.get("/portal/requests" + hostile).status_code == 200, hostile
    assert "No accepted requests yet." in text_of(portal.get("/portal/requests?show=closed"))


def test_pages_are_not_cached_and_gets_write_nothing(app, session, eva, operator):
    give_access(session, eva, "eva")
    request = desk_request(session, operator, eva, "Monitor")
    portal = PortalClient(app).ready("eva")
    before = session.scalar(select(func.count(AuditEvent.id)))
    for page in ("/portal/requests", f"/portal/requests/{request.id}", "/portal/requests/new",
                 "/portal/password", "/portal/sign-in", "/portal/"):
        answer = portal.get(page)
        assert answer.headers["Cache-Control"] == "no-store", page
    assert session.scalar(select(func.count(AuditEvent.id))) == before


def test_sign_ins_show_on_the_customers_history(app, session, eva, operator_client):
    give_access(session, eva, "eva")
    PortalClient(app).sign_in("eva", "wrong password!")
    PortalClient(app).sign_in("eva")
    page = text_of(operator_client.get(f"/admin/customers/history/?id={eva.id}"))
    assert "Portal sign-in failed" in page and "wrong password" in page and "eva (portal)" in page
    assert "Signed in to the portal" in page


def test_too_many_wrong_passwords_make_the_sign_in_wait(app, session, eva):
    give_access(session, eva, "eva")
    portal = PortalClient(app)
    for _ in range(app.config["LOGIN_ADDRESS_FAILURE_LIMIT"]):
        assert portal.sign_in("eva", "wrong password!").status_code == 422
    slowed = portal.sign_in("eva")  # the right password, too soon
    assert slowed.status_code == 429 and int(slowed.headers["Retry-After"]) >= 1
    assert "Too many failed sign-ins" in text_of(slowed) and portal.cookie() is None
    assert session.scalar(select(func.count()).where(AuditEvent.action == "portal_sign_in_throttled")) == 1


def test_files_of_visible_comments_download_and_an_internal_notes_do_not(app, session, eva, operator):
    from services.discussion import attach

    give_access(session, eva, "eva")
    request = desk_request(session, operator, eva, "Scanner")
    desk = Author.of_operator(operator)

    def comments():
        shown = add_comment(session, request, desk, "The manual is attached.")
        hidden = add_comment(session, request, desk, "Our price list", internal=True)
        return (attach(session, shown, "manual.html", "text/html", b"<script>alert(1)</script>"),
                attach(session, hidden, "prices.pdf", "application/pdf", b"%PDF secret"))

    manual, prices = written(session, comments)
    portal = PortalClient(app).ready("eva")
    page = portal.get(f"/portal/requests/{request.id}").get_data(as_text=True)
    assert "manual.html" in page and "prices.pdf" not in page
    got = portal.get(f"/portal/requests/{request.id}/files/{manual.id}")
    assert got.status_code == 200 and got.data == b"<script>alert(1)</script>"
    assert got.mimetype == "application/octet-stream"  # never rendered as a page of the portal
    assert got.headers["Content-Disposition"].startswith("attachment")
    assert portal.get(f"/portal/requests/{request.id}/files/{prices.id}").status_code == 404
