"""Sessions are revocable on the server: signing out, changing the password and deactivation end
every session of the operator — a cookie copied before does not sign anybody in afterwards.
The profile page changes one's own password; `reset-maintainer-password` resets a lost one."""

from __future__ import annotations

from sqlalchemy import select

from models import AuditEvent, Operator
from services.operators import verify_password
from tests.conftest import PASSWORD, Browserless, csrf_from, version_on

NEW_PASSWORD = "a brand new passphrase"


def signed_in_client(app, email: str, password: str = PASSWORD) -> Browserless:
    browser = Browserless(app.test_client())
    assert browser.login(email, password).status_code == 302
    return browser


def captured_cookie(browser: Browserless) -> str:
    cookie = browser.client.get_cookie("session")
    assert cookie is not None
    return cookie.value


def replayed(app, cookie: str) -> Browserless:
    """Another browser presenting a copied session cookie (what a thief would do)."""
    browser = Browserless(app.test_client())
    browser.client.set_cookie("session", cookie)
    return browser


def is_signed_in(browser: Browserless) -> bool:
    return browser.get("/admin/customers/").status_code == 200


def sign_out(browser: Browserless) -> None:
    page = browser.get("/admin/").get_data(as_text=True)
    assert browser.post("/logout", data={"csrf_token": csrf_from(page)}).status_code == 302


def change_password(browser: Browserless, current: str, new: str, repeat: str | None = None):
    return browser.submit("/admin/profile/", {"current_password": current, "new_password": new,
                                              "repeat_password": new if repeat is None else repeat})


def test_a_cookie_captured_before_sign_out_does_not_work_after_it(app, operator):
    browser = signed_in_client(app, operator.email)
    stolen = captured_cookie(browser)
    assert is_signed_in(replayed(app, stolen))
    sign_out(browser)
    assert not is_signed_in(replayed(app, stolen))
    assert not is_signed_in(browser)


def test_signing_out_ends_every_session_of_that_operator_only(app, operator, maintainer):
    laptop = signed_in_client(app, operator.email)
    phone = signed_in_client(app, operator.email)
    colleague = signed_in_client(app, maintainer.email)
    sign_out(laptop)
    assert not is_signed_in(phone)
    assert is_signed_in(colleague)
    again = signed_in_client(app, operator.email)  # signing in again works, of course
    assert is_signed_in(again)


def test_changing_the_password_keeps_this_session_and_ends_all_others(app, operator, session):
    browser = signed_in_client(app, operator.email)
    other = signed_in_client(app, operator.email)
    stolen = captured_cookie(browser)
    response = change_password(browser, PASSWORD, NEW_PASSWORD)
    assert response.status_code == 302
    assert "Your password was changed" in browser.get(response.headers["Location"]).get_data(as_text=True)
    assert is_signed_in(browser)
    assert not is_signed_in(other)
    assert not is_signed_in(replayed(app, stolen))
    session.expire_all()
    assert verify_password(session.get(Operator, operator.id).password_hash, NEW_PASSWORD)
    assert Browserless(app.test_client()).login(operator.email, PASSWORD).status_code == 422
    assert Browserless(app.test_client()).login(operator.email, NEW_PASSWORD).status_code == 302
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "password_change")).one()
    assert event.actor_id == operator.id and event.entity_id == operator.id
    assert NEW_PASSWORD not in str(event.changes) and PASSWORD not in str(event.changes)


def test_the_profile_page_is_in_the_top_bar_and_asks_for_the_current_password(app, operator):
    browser = signed_in_client(app, operator.email)
    page = browser.get("/admin/").get_data(as_text=True)
    assert 'href="/admin/profile/"' in page
    profile = browser.get("/admin/profile/").get_data(as_text=True)
    for label in ("Current password", "New password", "Repeat the new password"):
        assert label in profile
    assert PASSWORD not in profile


def test_a_password_change_is_refused_without_the_right_current_password(app, operator, session):
    browser = signed_in_client(app, operator.email)
    other = signed_in_client(app, operator.email)
    wrong = change_password(browser, "not my password", NEW_PASSWORD)
    assert wrong.status_code == 422
    assert "This is not your current password." in wrong.get_data(as_text=True)
    mismatch = change_password(browser, PASSWORD, NEW_PASSWORD, repeat=NEW_PASSWORD + "!")
    assert "The two new passwords differ." in mismatch.get_data(as_text=True)
    short = change_password(browser, PASSWORD, "short")
    assert short.status_code == 422
    assert "Use at least 10 characters." in short.get_data(as_text=True)  # the rule of new operators
    session.expire_all()
    assert verify_password(session.get(Operator, operator.id).password_hash, PASSWORD)
    assert is_signed_in(other) and is_signed_in(browser)
    assert NEW_PASSWORD not in mismatch.get_data(as_text=True)


def test_a_password_change_needs_the_csrf_token(app, operator):
    browser = signed_in_client(app, operator.email)
    response = browser.post("/admin/profile/", data={
        "current_password": PASSWORD, "new_password": NEW_PASSWORD, "repeat_password": NEW_PASSWORD})
    assert response.status_code == 400


def edit_operator(maintainer_client, operator, *, active: bool):
    data = {"email": operator.email, "first_name": operator.first_name, "last_name": operator.last_name,
            "role": "operator"}
    if active:
        data["is_active"] = "y"
    url = f"/admin/operators/edit/?id={operator.id}"
    data["version_seen"] = version_on(maintainer_client.get(url).get_data(as_text=True))
    response = maintainer_client.submit(url, data)
    assert response.status_code == 302, response.get_data(as_text=True)


def test_deactivation_ends_the_sessions_and_reactivation_does_not_revive_them(app, operator,
                                                                             maintainer_client):
    browser = signed_in_client(app, operator.email)
    stolen = captured_cookie(browser)
    edit_operator(maintainer_client, operator, active=False)
    assert not is_signed_in(browser)
    edit_operator(maintainer_client, operator, active=True)
    assert not is_signed_in(browser)
    assert not is_signed_in(replayed(app, stolen))
    assert is_signed_in(signed_in_client(app, operator.email))


def test_a_maintainer_setting_a_new_password_ends_the_operators_sessions(app, operator, maintainer_client):
    browser = signed_in_client(app, operator.email)
    response = maintainer_client.submit(f"/admin/operators/edit/?id={operator.id}", {
        "email": operator.email, "first_name": operator.first_name, "last_name": operator.last_name,
        "role": "operator", "is_active": "y", "password": NEW_PASSWORD,
        "version_seen": str(operator.version)})
    assert response.status_code == 302
    assert not is_signed_in(browser)
    assert is_signed_in(signed_in_client(app, operator.email, NEW_PASSWORD))


def test_editing_an_operators_name_keeps_their_sessions(app, operator, maintainer_client):
    browser = signed_in_client(app, operator.email)
    edit_operator(maintainer_client, operator, active=True)
    assert is_signed_in(browser)


def test_a_cookie_of_the_old_form_signs_nobody_in(app, operator):
    """A session cookie holding only the operator's id (as before the generation existed)."""
    from flask.sessions import SecureCookieSessionInterface

    serializer = SecureCookieSessionInterface().get_signing_serializer(app)
    forged = serializer.dumps({"_user_id": str(operator.id), "_fresh": True})
    assert not is_signed_in(replayed(app, forged))


# --- the CLI ------------------------------------------------------------------------------------

def test_reset_maintainer_password_sets_it_and_ends_their_sessions(app, maintainer, session):
    browser = signed_in_client(app, maintainer.email)
    runner = app.test_cli_runner()
    result = runner.invoke(args=["reset-maintainer-password", "--email", "BOSS@example.com",
                                 "--password", NEW_PASSWORD])
    assert result.exit_code == 0, result.output
    assert "boss@example.com was reset" in result.output and NEW_PASSWORD not in result.output
    assert not is_signed_in(browser)
    session.expire_all()
    assert verify_password(session.get(Operator, maintainer.id).password_hash, NEW_PASSWORD)
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "password_reset")).one()
    assert event.entity_id == maintainer.id and NEW_PASSWORD not in str(event.changes)


def test_reset_maintainer_password_asks_twice_when_not_given(app, maintainer, session):
    result = app.test_cli_runner().invoke(args=["reset-maintainer-password", "--email", maintainer.email],
                                          input=f"{NEW_PASSWORD}\n{NEW_PASSWORD}\n")
    assert result.exit_code == 0, result.output
    session.expire_all()
    assert verify_password(session.get(Operator, maintainer.id).password_hash, NEW_PASSWORD)


def test_reset_maintainer_password_refuses_unknown_and_non_maintainers_and_weak(app, maintainer,
                                                                                operator, session):
    runner = app.test_cli_runner()
    unknown = runner.invoke(args=["reset-maintainer-password", "--email", "nobody@example.com",
                                  "--password", NEW_PASSWORD])
    assert unknown.exit_code != 0 and "No maintainer signs in with nobody@example.com." in unknown.output
    assert "Traceback" not in unknown.output
    plain = runner.invoke(args=["reset-maintainer-password", "--email", operator.email,
                                "--password", NEW_PASSWORD])
    assert plain.exit_code != 0 and "No maintainer signs in with" in plain.output
    weak = runner.invoke(args=["reset-maintainer-password", "--email", maintainer.email,
                               "--password", "short"])
    assert weak.exit_code != 0 and "Use at least 10 characters." in weak.output
    session.expire_all()
    assert verify_password(session.get(Operator, maintainer.id).password_hash, PASSWORD)
    assert verify_password(session.get(Operator, operator.id).password_hash, PASSWORD)


def test_an_api_token_of_a_deactivated_operator_is_refused(app, operator, maintainer_client, session):
    """The API's token is a credential of its own (not a session): deactivation blocks it too."""
    from services.api_tokens import create_token
    from services.transactions import unit_of_work

    with unit_of_work(session):
        _, token = create_token(session, operator, "monitoring script")
    api = Browserless(app.test_client())  # each call in an app context (and session) of its own
    headers = {"Authorization": f"Bearer {token}"}
    assert api.get("/api/v1/customers", headers=headers).status_code == 200
    edit_operator(maintainer_client, operator, active=False)
    assert api.get("/api/v1/customers", headers=headers).status_code == 401
