"""The discussion and status flow (services.discussion): who may do what, what is recorded and who
gets a copy — the rules every door calls."""

import pytest

from models import OutgoingMail, Request, RequestStatusChange
from models.enums import MailState, RequestSource, RequestStatus, Via
from services.discussion import Author, accept, add_comment, change_status, may_see, raise_request, rate
from services.errors import PermissionDenied
from services.requests import save_request
from tests.conftest import contact, refusal, written


def side(company, first, via=Via.EMAIL):
    person = contact(company, first)
    return Author.of_sender(via, person.email, company, person)


def mail_to(session, request):
    return sorted(m.recipient_email for m in session.query(OutgoingMail).filter_by(request_id=request.id))


def test_a_desk_request_copies_main_contacts_and_assigned_contacts_only(session, operator, company):
    new = Request(customer=company, subject="Printer", contacts=[contact(company, "Cyril")])
    request = written(session, lambda: save_request(session, new, operator))
    assert mail_to(session, request) == ["cyril@acme.sk", "mia@acme.sk"]
    mail = session.query(OutgoingMail).first()
    assert mail.subject.startswith(f"[CD-{request.id}] Printer")
    # No SMTP server is configured here: the copy is tried after the commit and fails at once.
    assert mail.state == MailState.FAILED and "no SMTP server is configured" in mail.last_error


def test_the_status_flow_of_a_customer_and_an_operator(session, operator, company):
    new = Request(customer=company, subject="VPN")
    request = written(session, lambda: save_request(session, new, operator))
    desk, mia = Author.of_operator(operator), side(company, "Mia")
    assert "status" in refusal(session, lambda: accept(session, request, mia))  # not completed yet
    written(session, lambda: change_status(session, request, desk, RequestStatus.RESOLVED, comment="Done"))
    assert "comment" in refusal(session, lambda: change_status(session, request, mia,
                                                               RequestStatus.REOPENED))
    written(session, lambda: change_status(session, request, mia, RequestStatus.REOPENED, comment="Down"))
    written(session, lambda: change_status(session, request, desk, RequestStatus.RESOLVED))
    written(session, lambda: accept(session, request, mia, rating=5, remark="Quick"))
    assert request.status == RequestStatus.CLOSED and request.rating == 5
    assert "rating" in refusal(session, lambda: rate(session, request, mia, 4))  # once
    history = [(c.old_status, c.new_status, c.via) for c in session.query(RequestStatusChange).order_by("id")]
    assert history == [(RequestStatus.NEW, RequestStatus.RESOLVED, Via.DESK),
                       (RequestStatus.RESOLVED, RequestStatus.REOPENED, Via.EMAIL),
                       (RequestStatus.REOPENED, RequestStatus.RESOLVED, Via.DESK),
                       (RequestStatus.RESOLVED, RequestStatus.CLOSED, Via.EMAIL)]


def test_a_plain_contact_sees_only_its_requests_and_writes_no_internal_notes(session, operator, company):
    cyril, dana = side(company, "Cyril"), side(company, "Dana")
    raised = written(session, lambda: raise_request(session, cyril, "Laptop", "Broken",
                                                     source=RequestSource.EMAIL))
    assert may_see(session, raised, cyril) and not may_see(session, raised, dana)
    assert may_see(session, raised, side(company, "Mia"))
    with pytest.raises(PermissionDenied):
        add_comment(session, raised, dana, "Me too")
    with pytest.raises(PermissionDenied):
        add_comment(session, raised, cyril, "psst", internal=True)
    desk = Author.of_operator(operator)
    note = written(session, lambda: add_comment(session, raised, desk, "VIP", internal=True))
    assert note.is_internal and not session.query(OutgoingMail).filter_by(comment_id=note.id).count()
    # Cyril raised it: he gets the operator's comment, and the main contact too; not his own.
    written(session, lambda: add_comment(session, raised, Author.of_operator(operator), "On it"))
    written(session, lambda: add_comment(session, raised, cyril, "Thanks"))
    on_thanks = session.query(OutgoingMail).filter(OutgoingMail.body.contains("Thanks")).all()
    assert [m.recipient_email for m in on_thanks] == ["mia@acme.sk"]
