"""Hostile input on every page of the portal, sent by a signed-in portal account (the panel's
fuzzing tier, tests/test_fuzz_panel.py, reaches these pages only as an operator, whom the portal
sends to its sign-in): NUL and control characters, huge and negative numbers, markup, 30,000
characters — the answer is a page, a refusal or a redirect, never a 500."""

from __future__ import annotations

import pytest

from models.enums import CustomerKind
from tests.portal_helpers import PortalClient, complete, desk_request, give_access


@pytest.fixture
def eva(new_customer, operator):
    return new_customer(kind=CustomerKind.PERSON, first_name="Eva", last_name="Malá", email="eva@example.sk",
                        operators=[operator])


HOSTILE = ["", " ", "\x00", "a\x00b", "\x01\x1f\x7f", "\u202e\u200fעברית", "😀🔥" * 20, "x" * 30_000,
           "-1", "0", "99999999999999999999", "1.5", "1e400", "NaN", "<script>alert(1)</script>",
           "'; DROP TABLE request;--", "../../etc/passwd", "//evil.example"]
FIELDS = ["username", "password", "current_password", "new_password", "repeat_password", "subject",
          "description", "body", "rating", "remark", "comment"]


def test_hostile_input_on_every_portal_page_gets_a_page_never_a_500(app, session, eva, operator):
    give_access(session, eva, "eva")
    request = desk_request(session, operator, eva, "Hostile")
    complete(session, operator, request)
    portal = PortalClient(app).ready("eva")
    mine = [rule for rule in app.url_map.iter_rules()
            if app.view_functions[rule.endpoint].__module__ == "portal.views"
            and rule.endpoint != "portal.sign_out"]
    assert len(mine) >= 10
    for rule in mine:
        url = (rule.rule.replace("<int:request_id>", str(request.id)).replace("<int:attachment_id>", "1"))
        for value in HOSTILE:
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                if method == "GET":
                    answer = portal.get(url, query_string={"next": value, "page": value, "show": value})
                else:
                    answer = portal.post(url, dict.fromkeys(FIELDS, value))
                assert answer.status_code < 500, (method, url, value[:40], answer.status_code)
    assert portal.get("/portal/requests").status_code in (200, 302)

