"""The profile: the menu under the operator's name, the language and time zone form (checked on
the server, audited), the API tokens page with one heading."""

from __future__ import annotations

import re

from sqlalchemy import select

from extensions import db
from models import AuditEvent, Operator
from services.operators import set_own_preferences
from tests.conftest import csrf_from, refusal, written

PROFILE = "/admin/profile/"
PREFERENCES = "/admin/profile/preferences"


def text_of(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.get_data(as_text=True)))


def save_preferences(browser, **data):
    token = csrf_from(browser.get(PROFILE).get_data(as_text=True))
    return browser.post(PREFERENCES, data={"csrf_token": token, **data})


def test_the_profile_menu_is_under_the_operators_name(operator_client):
    html = operator_client.get("/admin/").get_data(as_text=True)
    start = html.index('data-testid="signed-in-as"')
    menu = html[start:html.index("</li>", start)]
    assert "Olga Operator" in menu
    for words, href in (("My profile and password", PROFILE), ("My API tokens", "/admin/api-tokens/"),
                        ("Language and time zone", PROFILE + "#preferences")):
        assert f'href="{href}">{words}</a>' in menu
    assert 'action="/logout"' in menu and "Sign out" in menu


def test_an_operator_chooses_a_language_and_a_time_zone(operator_client, operator, session):
    answer = save_preferences(operator_client, language="cs", time_zone="America/New_York")
    assert answer.status_code == 302 and answer.headers["Location"].endswith(PROFILE + "#preferences")
    session.expire_all()
    saved = session.get(Operator, operator.id)
    assert (saved.language, saved.time_zone) == ("cs", "America/New_York")
    event = session.scalars(select(AuditEvent).where(AuditEvent.entity_type == "operator",
                                                     AuditEvent.action == "update")).one()
    assert event.actor_id == operator.id
    assert event.changes == {"language": [None, "cs"], "time_zone": [None, "America/New_York"]}
    page = operator_client.get(PROFILE)
    assert '<html lang="cs">' in page.get_data(as_text=True)
    assert re.search(r'<option selected value="America/New_York">', page.get_data(as_text=True))

    # "As my browser" and the desk's zone: back to nothing chosen.
    save_preferences(operator_client, language="", time_zone="")
    session.expire_all()
    saved = session.get(Operator, operator.id)
    assert (saved.language, saved.time_zone) == (None, None)
    page = operator_client.get(PROFILE, headers={"Accept-Language": "sk"}).get_data(as_text=True)
    assert '<html lang="sk">' in page


def test_a_made_up_time_zone_or_language_is_refused_on_its_field(operator_client, operator, session):
    answer = save_preferences(operator_client, language="de", time_zone="Mars/Olympus_Mons")
    assert answer.status_code == 422
    page = text_of(answer)
    assert "Choose one of the languages offered." in page
    assert "Choose a time zone from the list, e.g. Europe/Bratislava." in page
    session.expire_all()
    assert session.get(Operator, operator.id).time_zone is None
    assert not session.scalars(select(AuditEvent).where(AuditEvent.action == "update")).all()


def test_preferences_without_a_token_are_refused(operator_client, operator, session):
    answer = operator_client.post(PREFERENCES, data={"language": "sk", "time_zone": ""})
    assert answer.status_code == 400
    session.expire_all()
    assert session.get(Operator, operator.id).language is None


def test_the_service_checks_and_audits_only_changes(session, operator):
    errors = refusal(session, lambda: set_own_preferences(session, operator, "xx", "Europe/Nowhere"))
    assert set(errors) == {"language", "time_zone"}
    written(session, lambda: set_own_preferences(session, operator, "sk", "Europe/Prague"))
    written(session, lambda: set_own_preferences(session, operator, "sk", "Europe/Prague"))  # no change
    events = session.scalars(select(AuditEvent).where(AuditEvent.action == "update")).all()
    assert len(events) == 1 and events[0].changes["time_zone"] == [None, "Europe/Prague"]
    version = session.get(Operator, operator.id).version
    written(session, lambda: set_own_preferences(session, operator, None, None))
    assert session.get(Operator, operator.id).version == version  # nobody's form goes stale


def test_the_password_form_still_works_beside_the_preferences(operator_client):
    page = operator_client.get(PROFILE)
    answer = operator_client.post(PROFILE, data={"csrf_token": csrf_from(page.get_data(as_text=True)),
                                                 "current_password": "wrong", "new_password": "short",
                                                 "repeat_password": "short"})
    assert answer.status_code == 422
    assert "This is not your current password." in text_of(answer)
    assert "Use at least 10 characters." in text_of(answer)


def test_the_api_tokens_page_has_one_heading(operator_client):
    html = operator_client.get("/admin/api-tokens/").get_data(as_text=True)
    main = html[html.index("<main"):]
    headings = re.findall(r"<h[1-6][^>]*>(.*?)</h[1-6]>", main, re.S)
    assert [h.strip() for h in headings] == ["My API tokens"]


def test_api_token_times_are_shown_in_the_operators_zone(operator_client, operator, session):
    from datetime import datetime

    from services.api_tokens import create_token

    row, _token = written(session, lambda: create_token(session, operator, "monitoring"))
    row.created_at = datetime(2025, 1, 15, 23, 30)  # UTC, winter
    db.session.commit()
    assert "Jan 16, 2025 00:30" in text_of(operator_client.get("/admin/api-tokens/"))
