"""In Chromium: the profile menu under the operator's name — the profile page changes one's own
password (the session that changed it goes on, another browser's has ended) and the language
(Čeština: the panel switches); error pages in the panel's bar; the panel's layout at 800 and
1920 px (no sideways scrolling, the bar from edge to edge, Cancel not red, checkboxes beside
their labels)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import sign_in

pytestmark = pytest.mark.browser

NEW_PASSWORD = "a brand new passphrase"
PAGES = ("/admin/", "/admin/customers/", "/admin/contacts/", "/admin/customers/new/", "/admin/profile/",
         "/admin/api-tokens/", "/admin/operators/new/", "/admin/audit/")
SIDEWAYS = "document.documentElement.scrollWidth - document.documentElement.clientWidth"


def watch(page) -> list[str]:
    """Console errors and 4xx/5xx answers seen by `page` (the test says which it expects)."""
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(f"console: {msg.text}") if msg.type == "error" else None)
    page.on("response", lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    return problems


def open_profile_menu(page, entry: str) -> None:
    page.get_by_test_id("signed-in-as").click()
    page.get_by_test_id("profile-menu").get_by_role("link", name=entry).click()


def test_an_operator_changes_their_password_on_the_profile_page(signed_in, desk, browser, base_url,
                                                                 artifacts):
    page = signed_in
    elsewhere = browser.new_context(base_url=base_url)
    other = elsewhere.new_page()
    sign_in(other, desk.maintainer_email)
    other.wait_for_url("**/admin/")

    page.get_by_test_id("signed-in-as").click()
    expect(page.get_by_test_id("profile-menu")).to_be_visible()
    page.screenshot(path=str(artifacts / "profile-menu-open.png"), animations="disabled")
    page.get_by_role("link", name="My profile and password").click()
    page.wait_for_url("**/admin/profile/")
    expect(page.get_by_test_id("profile")).to_contain_text(desk.maintainer_email)
    page.get_by_label("Current password").fill("not my password")
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("Repeat the new password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_text("This is not your current password.")).to_be_visible()
    expect(page.get_by_label("New password", exact=True)).to_have_value("")  # never sent back

    page.get_by_label("Current password").fill(desk.password)
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("Repeat the new password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_text("Your password was changed.")).to_be_visible()
    page.screenshot(path=str(artifacts / "profile-password-changed.png"), full_page=True,
                    animations="disabled")

    page.goto("/admin/customers/")
    assert page.url.endswith("/admin/customers/")  # this session goes on
    other.goto("/admin/customers/")
    assert "/login" in other.url  # the other browser's session has ended
    elsewhere.close()


def test_choosing_cestina_in_the_profile_menu_switches_the_panel(signed_in, artifacts):
    page = signed_in
    problems = watch(page)
    open_profile_menu(page, "Language and time zone")
    page.wait_for_url("**/admin/profile/#preferences")
    page.get_by_label("Language").select_option(label="Čeština")
    page.get_by_label("Time zone").select_option("Europe/Prague")
    page.get_by_role("button", name="Save language and time zone").click()
    page.wait_for_url("**/admin/profile/#preferences")
    expect(page.locator("html")).to_have_attribute("lang", "cs")
    # The page itself now speaks Czech: our words from our catalog.
    expect(page.get_by_label("Časové pásmo")).to_have_value("Europe/Prague")
    expect(page.get_by_role("heading", name="Jazyk a časové pásmo")).to_be_visible()
    page.screenshot(path=str(artifacts / "profile-language-cs.png"), full_page=True, animations="disabled")

    page.goto("/admin/contacts/")
    expect(page.locator("html")).to_have_attribute("lang", "cs")
    # Flask-Admin's own words of the list page, from its Czech catalog, and the menu's from ours.
    expect(page.get_by_role("link", name="Seznam")).to_be_visible()
    expect(page.get_by_role("navigation").get_by_role("link", name="Zákazníci", exact=True)).to_be_visible()
    expect(page.get_by_role("link", name="Vytvořit")).to_be_visible()
    page.screenshot(path=str(artifacts / "contacts-in-czech.png"), animations="disabled")

    # Back to the browser's language (English here).
    page.goto("/admin/profile/")
    page.locator("#language").select_option("")
    page.get_by_test_id("preferences-form").locator("button[type=submit]").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    assert problems == []


def test_an_unknown_address_is_a_page_of_the_panel_with_a_way_back(signed_in, artifacts, base_url):
    page = signed_in
    # A stale link on another page of the desk (the referrer is where "Back" leads).
    answer = page.goto("/admin/customers/no-such-page/", referer=f"{base_url}/admin/customers/")
    assert answer.status == 404
    expect(page.get_by_test_id("error-page")).to_contain_text("Page not found")
    expect(page.get_by_test_id("request-id")).to_contain_text(answer.headers["x-request-id"])
    page.screenshot(path=str(artifacts / "error-404-panel.png"), animations="disabled")
    page.get_by_test_id("error-back").click()
    page.wait_for_url("**/admin/customers/")


@pytest.mark.parametrize("width", [800, 1920])
def test_the_panel_fits_the_window(signed_in, artifacts, width):
    page = signed_in
    page.set_viewport_size({"width": width, "height": 900})
    for url in PAGES:
        page.goto(url)
        overflow = page.evaluate(SIDEWAYS)
        assert overflow <= 0, f"{url} scrolls sideways by {overflow} px at {width} px"
        bar = page.locator("nav.cd-navbar").bounding_box()
        assert bar is not None and bar["x"] == 0 and abs(bar["width"] - width) <= 1, f"{url}: {bar}"
    page.goto("/admin/customers/")
    page.screenshot(path=str(artifacts / f"customers-{width}.png"), animations="disabled")

    page.goto("/admin/operators/new/")
    cancel = page.get_by_role("button", name="Cancel").or_(page.get_by_role("link", name="Cancel")).first
    red = page.evaluate("el => getComputedStyle(el).backgroundColor", cancel.element_handle())
    assert red != "rgb(220, 53, 69)", "Cancel is red"
    box = page.locator("input[type=checkbox]#is_active")
    label = page.locator("label[for=is_active]")
    box_at, label_at = box.bounding_box(), label.bounding_box()
    assert box_at and label_at
    middle = box_at["y"] + box_at["height"] / 2
    assert label_at["y"] <= middle <= label_at["y"] + label_at["height"], "the checkbox is beside its label"
    assert box_at["x"] < label_at["x"], "the checkbox sits before its label"
    page.screenshot(path=str(artifacts / f"operator-form-{width}.png"), full_page=True, animations="disabled")
    if width == 1920:
        main = page.locator("main.cd-main").bounding_box()
        assert main and main["width"] <= 1600
