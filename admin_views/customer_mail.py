"""The customer's Mail tab: the copies mailed for the customer's requests (newest first, with their
delivery state and a Resend button) and the mail received from it (what became of each, with
its request). Whoever may view the customer sees the tab and may resend; the Resend buttons of
the request page post here too.

Shown: addresses, subjects, states, attempts, our own error texts and the server a copy went
through (host and port). Not shown: message bodies — a copy's body carries the recipient's
signed links, which act for them without signing in — nor any password of a mail server.
"""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, request, url_for
from sqlalchemy import select

from admin_views.base import actor
from admin_views.customer_page import CustomerPage, TabSpec
from admin_views.ids import parse_id
from admin_views.refusals import panel_write
from admin_views.request_discussion import mail_badge
from extensions import db
from i18n import _, _l
from models import Customer
from models.mail import IncomingMail, OutgoingMail
from services.access import Right
from services.errors import NotFound
from services.mail_admin import resend_copy

PAGE_SIZE = 25
MAX_PAGE = 10_000  # beyond any real mailbox; keeps OFFSET within what the databases take


def _page(name: str) -> int:
    number = parse_id(request.args.get(name))
    return min(number, MAX_PAGE) if number is not None else 1


def _rows(query, page: int) -> tuple[list, bool]:
    """One page of `query` and whether another follows (no count over the customer's mail)."""
    rows = list(db.session.scalars(query.offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE + 1)))
    return rows[:PAGE_SIZE], len(rows) > PAGE_SIZE


def requests_of(customer: Customer) -> str:
    """The request list filtered to the customer (RequestView's "Customer #" filter)."""
    from admin_views.requests import RequestView

    filtered: dict[str, Any] = {f"flt0_{RequestView.CUSTOMER_FILTER}": customer.id}
    return url_for("requests.index_view", **filtered)


class MailPage(CustomerPage):
    """Mail sent and received for one customer."""

    template = "admin/customer_mail.html"
    form = None  # a Resend button per message: the hidden "mail" id (and "back" from a request page)
    right = Right.VIEW
    post_right = Right.VIEW  # services.mail_admin.resend_copy: whoever may view the customer
    tabs = (TabSpec("mail_log", _l("Mail")),)  # "mail" is the Mail servers tab

    def get(self, customer: Customer):
        sent_page, received_page = _page("sent_page"), _page("received_page")
        sent, more_sent = _rows(select(OutgoingMail).where(OutgoingMail.customer_id == customer.id)
                                .order_by(OutgoingMail.id.desc()), sent_page)
        received, more_received = _rows(select(IncomingMail).where(IncomingMail.customer_id == customer.id)
                                        .order_by(IncomingMail.id.desc()), received_page)
        pages = {"sent": sent_page, "received": received_page}

        def page_url(which: str, page: int) -> str:
            wanted: dict[str, Any] = {f"{k}_page": v for k, v in {**pages, which: page}.items()}
            return url_for(".index", id=customer.id, _anchor=which, **wanted)

        return self.render_page(customer, sent=sent, received=received, sent_page=sent_page,
                                received_page=received_page, more_sent=more_sent,
                                more_received=more_received, mail_badge=mail_badge, page_url=page_url,
                                requests_url=requests_of(customer))

    def post(self, customer: Customer):
        number = parse_id(request.form.get("mail"))
        mail = None if number is None else db.session.scalar(
            select(OutgoingMail).where(OutgoingMail.id == number, OutgoingMail.customer_id == customer.id))
        if mail is None:
            raise NotFound(_("No such message of this customer."))
        request_id = mail.request_id
        with panel_write() as outcome:
            copy = resend_copy(db.session, actor(), mail)
        if outcome.ok:
            flash(_("A new copy to %(email)s is queued.", email=copy.recipient_email), "success")
        # Back where the button was: the request's page (its id read from the mail, never from
        # the form) or this tab.
        if request.form.get("back") == "request" and request_id is not None:
            return redirect(url_for("requests.details_view", id=request_id, _anchor="mails"))
        return redirect(url_for(".index", id=customer.id))
