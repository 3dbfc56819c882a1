"""The desk in the reader's language and time zone: an operator's own choice (profile), the
browser's on the sign-in page, dates through `|when` in the operator's zone, numbers in the locale.

Flask-Admin translates its own words from the catalogs it ships: those prove the panel switched
until the product's own catalogs are merged."""

from __future__ import annotations

import re
from datetime import datetime

import pytest

from i18n import number, when
from models import Operator
from services.api_tokens import create_token
from tests.conftest import Browserless, written

SLOVAK = ("Zoznam", "Vytvoriť", "Pridať filter", "Vyhľadávanie")  # List, Create, Add Filter, Search
CZECH = ("Seznam", "Vytvořit", "Přidat filtr", "Hledat")
ENGLISH = ("List", "Create", "Add Filter", "Search")


def text_of(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.get_data(as_text=True)))


def choose(session, operator, language=None, time_zone=None) -> None:
    row = session.get(Operator, operator.id)
    row.language, row.time_zone = language, time_zone
    session.commit()


def signed_in(app, operator, **headers) -> Browserless:
    browser = Browserless(app.test_client())
    browser.client.environ_base.update({f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()})
    assert browser.login(operator.email).status_code == 302
    return browser


@pytest.mark.parametrize("language, words", [("sk", SLOVAK), ("cs", CZECH), ("en", ENGLISH)])
def test_an_operator_sees_the_panel_in_the_language_they_chose(app, session, operator, language, words):
    choose(session, operator, language)
    # The browser asks for another language: the operator's own choice wins.
    browser = signed_in(app, operator, **{"Accept-Language": "de, en;q=0.1" if language != "en" else "sk"})
    page = browser.get("/admin/contacts/")
    assert page.status_code == 200
    assert f'<html lang="{language}">' in page.get_data(as_text=True)
    shown = text_of(page)
    for word in words:
        assert f" {word} " in shown, word


def test_without_a_choice_the_panel_follows_the_browser(app, operator):
    browser = signed_in(app, operator, **{"Accept-Language": "cs-CZ, cs;q=0.9, en;q=0.5"})
    page = browser.get("/admin/contacts/")
    assert '<html lang="cs">' in page.get_data(as_text=True) and " Seznam " in text_of(page)


@pytest.mark.parametrize("header, language", [("cs-CZ,cs;q=0.9", "cs"), ("sk", "sk"), ("de-AT, de", "en"),
                                              ("", "en")])
def test_the_sign_in_page_follows_the_browser(client, header, language):
    page = client.get("/login", headers={"Accept-Language": header} if header else {})
    assert page.status_code == 200 and f'<html lang="{language}">' in page.get_data(as_text=True)


def test_dates_follow_the_operators_time_zone_and_language(app, session, operator):
    row, _token = written(session, lambda: create_token(session, operator, "monitoring"))
    row.created_at = datetime(2025, 1, 15, 23, 30)  # stored UTC; winter: Bratislava is UTC+1
    session.commit()
    choose(session, operator, "sk", "Europe/Bratislava")
    browser = signed_in(app, operator)
    assert "16. 1. 2025 00:30" in text_of(browser.get("/admin/api-tokens/"))

    choose(session, operator, "sk", "America/New_York")
    assert "15. 1. 2025 18:30" in text_of(browser.get("/admin/api-tokens/"))

    choose(session, operator, "en", None)  # the desk's zone (DISPLAY_TIME_ZONE: Europe/Bratislava)
    assert "Jan 16, 2025 00:30" in text_of(browser.get("/admin/api-tokens/"))


def test_numbers_and_dates_in_the_readers_locale(app):
    at = datetime(2025, 7, 1, 10, 5)  # summer: UTC+2 in Bratislava
    for header, expected_number, expected_when in (
            ("sk", "1\xa0234\xa0567,5", "1. 7. 2025 12:05"), ("cs", "1\xa0234\xa0567,5", "1. 7. 2025 12:05"),
            ("en", "1,234,567.5", "Jul 1, 2025 12:05")):
        # An application context of its own: the locale is chosen once per request.
        with app.app_context(), app.test_request_context("/login", headers={"Accept-Language": header}):
            assert number(1234567.5) == expected_number
            assert when(at) == expected_when
            assert number(None) == "" and when(None) == ""
