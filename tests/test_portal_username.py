"""A portal user name longer than its column: a message on "username" through the command and
the portal page, never a 500 (PostgreSQL would refuse the value; SQLite would store it)."""

from models import PortalAccount
from models.enums import CustomerKind
from services.limits import max_length
from services.portal import create_portal_account
from tests.conftest import PASSWORD, refusal, written

LIMIT = max_length(PortalAccount.username)


def test_the_command_refuses_a_user_name_over_the_column_on_the_field(session, new_customer, maintainer):
    customer = new_customer(kind=CustomerKind.PERSON, first_name="Eva", last_name="Malá")

    def create(username):
        return create_portal_account(session, customer, maintainer, username=username, password=PASSWORD,
                                     security_group=None)

    assert LIMIT == 120
    errors = refusal(session, lambda: create("u" * (LIMIT + 1)))
    assert errors == {"username": [f"At most {LIMIT} characters, please ({LIMIT + 1} given)."]}
    assert session.query(PortalAccount).count() == 0
    account = written(session, lambda: create("u" * LIMIT))
    assert len(account.username) == LIMIT


def test_the_portal_page_shows_the_message_on_the_user_name(maintainer_client, session, new_customer):
    customer = new_customer(kind=CustomerKind.PERSON, first_name="Eva", last_name="Malá")
    url = f"/admin/customers/portal/?id={customer.id}"
    response = maintainer_client.submit(url, {"action": "create", "username": "u" * (LIMIT + 1),
                                              "password": PASSWORD})
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and f"At most {LIMIT} characters, please" in html
    assert 'value="' + "u" * (LIMIT + 1) + '"' in html  # the input is kept for correcting
    assert session.query(PortalAccount).count() == 0
