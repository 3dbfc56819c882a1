"""What an attacker found after the hardening of issue 14, kept: one pasted value must not cost
hundreds of megabytes, a sign-in with a NUL is a refusal on both databases, a deactivation ends
API tokens for good, and a maintainer's session cannot set its own password without the current
one. Memory is measured with tracemalloc (what the request allocates), never time."""

from __future__ import annotations

import random
import string
import tracemalloc
from contextlib import contextmanager

from models import Operator
from models.enums import OperatorRole
from services.api_tokens import create_token
from services.bulk_import import OnMatch, run_import
from services.bulk_import_files import SourceRow
from services.customers import SaveOptions
from services.operators import verify_password
from tests.conftest import Browserless, csrf_from, version_on, written
from tests.test_sessions import edit_operator

PASTED = "".join(random.Random(2).choices(string.ascii_lowercase, k=15_000))  # one "word"
MEGABYTE = 1024 * 1024


@contextmanager
def allocated():
    """The peak of what the block allocates, in MiB (`peak[0]` after the block)."""
    peak = [0.0]
    tracemalloc.start()
    try:
        yield peak
    finally:
        peak[0] = tracemalloc.get_traced_memory()[1] / MEGABYTE
        tracemalloc.stop()


def test_a_pasted_name_of_15000_letters_is_refused_without_costing_memory(operator_client):
    """Every one-letter-deleted variant of the word (n strings of n letters) was built for the
    typo lookup before the length rule refused it: +355 MB for 15,000 letters, ~10 GB for 100,000."""
    page = operator_client.get("/admin/customers/")
    token = csrf_from(page.get_data(as_text=True))
    with allocated() as peak:
        answer = operator_client.post("/admin/customers/quick/create", data={
            "csrf_token": token, "kind": "company", "name": PASTED, "email": "info@firma.sk",
            "contacts-0-last_name": "Novák",
            "contacts-0-email": "novak@firma.sk"})
    assert answer.status_code == 422 and "name" in " ".join(answer.get_json()["errors"])
    assert peak[0] < 40, f"{peak[0]:.0f} MiB for one request"


def test_an_import_row_with_pasted_values_is_rejected_without_costing_memory(app, session, operator):
    rows = [SourceRow(2, {"Name": PASTED, "Mail": "a@b.sk"}), SourceRow(3, {"Name": "Dlhá s.r.o.",
                                                                          "Mail": "x" * 100_000 + "@b.sk"})]
    with allocated() as peak:
        report = run_import(session, operator, rows, {"Name": "company_name", "Mail": "email"}, ["email"],
                            OnMatch.UPDATE_EMPTY.value, SaveOptions(), dry_run=True)
    session.rollback()
    assert report.counts()["rejected"] == 2
    assert peak[0] < 40, f"{peak[0]:.0f} MiB for two rows"
    # The address is refused for its length before the parser reads 100,000 characters.
    assert any("longer than 254 characters" in message
               for row in report.rejected for _, message in row.errors)


def test_a_sign_in_with_a_nul_is_a_refusal_on_both_databases(app, operator):
    for email, password in (("olga@example.com\x00", "wrong password!"), ("\x00", "x\x00y"),
                            ("olga@example.com", "p\x00" * 10)):
        browser = Browserless(app.test_client())
        token = csrf_from(browser.get("/login").get_data(as_text=True))
        answer = browser.post("/login", data={"email": email, "password": password, "csrf_token": token})
        assert answer.status_code in (200, 422), answer.status_code
        assert "/login" in browser.get("/admin/").headers.get("Location", "")  # not signed in


def test_a_deactivation_revokes_api_tokens_for_good(app, operator, maintainer_client, session):
    _row, token = written(session, lambda: create_token(session, operator, "monitoring script"))
    api = Browserless(app.test_client())
    headers = {"Authorization": f"Bearer {token}"}
    assert api.get("/api/v1/customers", headers=headers).status_code == 200
    edit_operator(maintainer_client, operator, active=False)
    assert api.get("/api/v1/customers", headers=headers).status_code == 401
    edit_operator(maintainer_client, operator, active=True)
    assert api.get("/api/v1/customers", headers=headers).status_code == 401  # not revived


def test_a_maintainer_sets_their_own_password_only_on_the_profile_page(maintainer, maintainer_client,
                                                                      make_operator, session):
    make_operator("second@example.com", OperatorRole.MAINTAINER)
    url = f"/admin/operators/edit/?id={maintainer.id}"
    answer = maintainer_client.submit(url, {
        "email": maintainer.email, "first_name": maintainer.first_name, "last_name": maintainer.last_name,
        "role": "maintainer", "is_active": "y", "password": "a brand new passphrase",
        "version_seen": version_on(maintainer_client.get(url).get_data(as_text=True))})
    assert "on your profile page" in answer.get_data(as_text=True)
    session.expire_all()
    assert not verify_password(session.get(Operator, maintainer.id).password_hash, "a brand new passphrase")
