"""Small helpers of the portal's tests: portal accounts given through services.portal, and one
browser on the portal (the Flask test client, with its own cookies and CSRF token)."""

from __future__ import annotations

from models import Contact, Customer, PortalAccount, Request, SecurityGroup
from models.enums import RequestStatus
from services.discussion import Author, change_status
from services.portal import create_portal_account
from services.portal_sessions import COOKIE_NAME, COOKIE_PATH
from services.requests import save_request
from tests.conftest import Browserless, csrf_from, written

FIRST = "first password 1"  # what the desk hands over
OWN = "my own password 22"  # what the customer chooses at the first sign-in


def give_access(session, customer: Customer, username: str, *, contact: Contact | None = None,
                group: SecurityGroup | None = None, password: str = FIRST) -> PortalAccount:
    return written(session, lambda: create_portal_account(session, customer, None, username=username,
                                                          password=password, security_group=group,
                                                          contact=contact))


def desk_request(session, operator, customer, subject, contacts=()) -> Request:
    """A request an operator raised at the desk (services.requests.save_request)."""
    new = Request(customer=customer, subject=subject, contacts=list(contacts))
    return written(session, lambda: save_request(session, new, operator))


def complete(session, operator, request) -> None:
    """The operator completes the request, with a comment."""
    written(session, lambda: change_status(session, request, Author.of_operator(operator),
                                           RequestStatus.RESOLVED, comment="Fixed it."))


class PortalClient:
    """One browser on the portal: its own cookies (the portal's and Flask's session with the
    CSRF token), nothing of any other client's."""

    def __init__(self, app):
        self.browser = Browserless(app.test_client())
        self._token: str | None = None

    def get(self, path: str, **kw):
        return self.browser.get(path, **kw)

    def post(self, path: str, data: dict | None = None, **kw):
        return self.browser.post(path, data={"csrf_token": self.token(), **(data or {})}, **kw)

    def token(self) -> str:
        if self._token is None:
            self._token = csrf_from(self.get("/portal/sign-in").get_data(as_text=True))
        return self._token

    def sign_in(self, username: str, password: str = FIRST, next_page: str | None = None):
        path = "/portal/sign-in" + (f"?next={next_page}" if next_page is not None else "")
        return self.post(path, {"username": username, "password": password})

    def change_password(self, current: str = FIRST, new: str = OWN):
        return self.post("/portal/password", {"current_password": current, "new_password": new,
                                              "repeat_password": new})

    def ready(self, username: str, password: str = FIRST, new: str = OWN) -> PortalClient:
        """Signed in, with the first password replaced by the customer's own."""
        assert self.sign_in(username, password).status_code == 302
        assert self.change_password(password, new).status_code == 302
        return self

    def cookie(self) -> str | None:
        found = self.browser.client.get_cookie(COOKIE_NAME, path=COOKIE_PATH)
        return found.value if found is not None else None

    def plant(self, value: str) -> None:
        self.browser.client.set_cookie(COOKIE_NAME, value, path=COOKIE_PATH)

    def text(self, path: str) -> str:
        return self.get(path).get_data(as_text=True)
