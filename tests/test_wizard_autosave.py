"""The wizard keeps what is typed as it is typed, makes its draft on the first save, asks before
discarding, and sums up in the users' words — through the test client, on SQLite and PostgreSQL."""

import re

from sqlalchemy import select

from models import CustomerSettings, WizardDraft
from tests.conftest import csrf_from
from tests.test_wizard import COMPANY, database_state, draft_key, post_step, save, start, walk

NEW = "/admin/customers/wizard/new"
STEP3 = {"use_builtin_mail_servers": "0", "pop3_address": "desk@own.example.sk",
         "pop3_host": "pop.own.example.sk", "pop3_port": "995", "pop3_security": "ssl",
         "pop3_username": "desk", "pop3_password": "pop-typed-secret",
         "smtp_primary_host": "smtp.own.example.sk", "smtp_primary_port": "587",
         "smtp_primary_security": "starttls", "smtp_primary_username": "desk",
         "smtp_primary_password": "primary-typed-secret",
         "smtp_fallback_host": "smtp2.own.example.sk", "smtp_fallback_port": "465",
         "smtp_fallback_security": "ssl", "smtp_fallback_username": "desk2",
         "smtp_fallback_password": "fallback-typed-secret"}
PASSWORDS = ("pop3_password", "smtp_primary_password", "smtp_fallback_password")


def autosave(client, base, step, data, status=200):
    page = client.get(f"{base}/{step}").get_data(as_text=True)
    response = client.post(f"{base}/{step}/autosave", data={**data, "csrf_token": csrf_from(page)})
    assert response.status_code == status, response.get_data(as_text=True)
    return response.get_json()


def at_mail_step(client):
    base = start(client)
    assert post_step(client, base, "customer", COMPANY).status_code == 302
    assert post_step(client, base, "cmonitor", {}).status_code == 302
    return base


def test_add_a_customer_makes_no_draft_until_the_first_save(maintainer_client, session):
    before = database_state(session)
    listing = maintainer_client.get("/admin/customers/").get_data(as_text=True)
    opened = maintainer_client.post("/admin/customers/wizard/start", data={"csrf_token": csrf_from(listing)})
    assert opened.status_code == 302 and opened.headers["Location"].endswith("/wizard/new")
    page = maintainer_client.get(NEW).get_data(as_text=True)
    assert 'name="draft_key"' in page and 'data-autosave-url="/admin/customers/wizard/new/autosave"' in page
    assert "Discard this draft" not in page and "Unnamed customer" not in page
    assert database_state(session) == before  # nothing written: no "Unnamed customer" draft
    assert session.query(WizardDraft).count() == 0

    key = draft_key(page)
    token = csrf_from(page)
    first = maintainer_client.post(f"{NEW}/autosave", data={
        "csrf_token": token, "draft_key": key, "kind": "company", "company_name": "Prvá s.r.o."})
    again = maintainer_client.post(f"{NEW}/autosave", data={"csrf_token": token, "draft_key": key,
                                                             "kind": "company", "company_name": "Prvá a.s."})
    assert first.status_code == again.status_code == 200
    assert first.get_json()["draft_id"] == again.get_json()["draft_id"]  # one page, one draft
    # The page's Next (sent before it learnt its draft's URL) lands in the same draft.
    nexted = maintainer_client.post(NEW, data={"csrf_token": token, "draft_key": key, "nav": "next",
                                               **{**COMPANY, "company_name": "Prvá a.s."}})
    assert nexted.status_code == 302 and nexted.headers["Location"].endswith("/cmonitor")
    draft = session.scalars(select(WizardDraft)).one()
    assert draft.data["steps"]["customer"]["company_name"] == "Prvá a.s." and draft.step == "cmonitor"


def test_next_on_a_new_wizard_keeps_a_refused_step_in_a_new_draft(maintainer_client, session):
    page = maintainer_client.get(NEW).get_data(as_text=True)
    refused = maintainer_client.post(NEW, data={"csrf_token": csrf_from(page), "draft_key": draft_key(page),
                                                "nav": "next", **{**COMPANY, "company_name": ""}})
    html = refused.get_data(as_text=True)
    assert refused.status_code == 200 and "A company needs its company name." in html
    draft = session.scalars(select(WizardDraft)).one()
    assert f'action="/admin/customers/wizard/{draft.id}/customer"' in html  # the page is the draft's now
    assert 'value="50 111 222"' in html and draft.step == "customer"


def test_autosave_keeps_all_of_step_three_without_next(maintainer_client, session):
    base = at_mail_step(maintainer_client)
    answer = autosave(maintainer_client, base, "mail", STEP3)
    assert answer["ok"] is True and answer["message"] == "Kept in the draft"
    # Left by a link, not by Next: coming back shows every field; passwords as "set", never their text.
    page = maintainer_client.get(f"{base}/mail").get_data(as_text=True)
    for name, value in STEP3.items():
        if name in PASSWORDS:
            assert f'data-testid="secret-set-{name}"' in page
            assert value not in page
        elif name.endswith("_security"):
            assert re.search(rf'<option selected value="{value}">|<option value="{value}" selected',
                             page), name
        elif name == "use_builtin_mail_servers":
            assert re.search(r'checked[^>]*value="0"|value="0"[^>]*checked', page)
        else:
            assert f'value="{value}"' in page, name
    assert page.count("Set — leave empty to keep.") == 3
    session.expire_all()
    draft = session.scalars(select(WizardDraft)).one()
    assert draft.step == "mail"  # an autosave opens no later step
    assert not any(v in repr(draft.data) for v in ("pop-typed-secret", "primary-typed-secret"))
    # An empty password in a later autosave keeps the one kept before.
    autosave(maintainer_client, base, "mail", {**STEP3, "pop3_password": "", "pop3_host": "pop2.example.sk"})
    walk(maintainer_client, base, COMPANY, mail={**STEP3, **dict.fromkeys(PASSWORDS, "")})
    assert save(maintainer_client, base).status_code == 302
    settings = session.scalars(select(CustomerSettings)).one()
    from services.secrets import SecretBox
    from tests.conftest import ENCRYPTION_KEY

    assert SecretBox(ENCRYPTION_KEY).decrypt(settings.pop3_password_encrypted) == "pop-typed-secret"
    assert settings.smtp_fallback_username == "desk2"


def test_autosave_keeps_what_the_step_refuses_as_typed(maintainer_client, session):
    base = at_mail_step(maintainer_client)
    autosave(maintainer_client, base, "mail", {**STEP3, "pop3_port": "nine", "pop3_address": "no address"})
    page = maintainer_client.get(f"{base}/mail").get_data(as_text=True)
    assert 'value="nine"' in page and 'value="no address"' in page


def test_autosave_of_a_step_not_reached_or_a_saved_draft_is_refused(maintainer_client, session):
    base = start(maintainer_client)
    ahead = autosave(maintainer_client, base, "customer", COMPANY)
    assert ahead["ok"]
    page = maintainer_client.get(f"{base}/customer").get_data(as_text=True)
    skipped = maintainer_client.post(f"{base}/mail/autosave", data={**STEP3, "csrf_token": csrf_from(page)})
    assert skipped.status_code == 409
    walk(maintainer_client, base, COMPANY)
    assert save(maintainer_client, base).status_code == 302
    late = maintainer_client.post(f"{base}/requests/autosave", data={"csrf_token": csrf_from(page)})
    assert late.status_code == 409 and late.get_json()["saved"] is True


def test_an_operator_cannot_autosave_operators(operator_client, make_operator):
    friend = make_operator("friend@example.com")
    base = start(operator_client)
    walk(operator_client, base, COMPANY)
    autosave(operator_client, base, "operators", {"operators": [str(friend.id)]}, status=403)


def test_the_summary_speaks_the_users_words_and_has_back_and_edit(maintainer_client, operator):
    base = start(maintainer_client)
    summary = walk(maintainer_client, base, COMPANY,
                   cmonitor={"cmonitor_password": "agent-pass", "cmonitor_password_confirm": "agent-pass"},
                   operators=[str(operator.id)])
    html = summary.get_data(as_text=True)
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))
    for internal in ("Kind *", "Mail servers: 0", "cm_server", "True", "Repeat the password",
                     ": company", "First name", "agent-pass"):
        assert internal not in text, internal
    assert re.search(r"Kind\s*</dt>\s*<dd[^>]*>Company</dd>", html)
    assert re.search(r"C-Monitor access password\s*</dt>\s*<dd[^>]*>set</dd>", html)
    assert re.search(r"Use the built-in mail servers\s*</dt>\s*<dd[^>]*>Yes</dd>", html)
    assert "Olga Operator" in text and "Wizard Works s.r.o." in text
    assert "POP3: host" not in text  # the built-in servers: no own server fields
    assert f'href="{base}/operators">Back</a>' in html
    for step in ("customer", "cmonitor", "mail", "notifications", "requests", "operators"):
        assert re.search(rf'href="{base}/{step}"\s+aria-label="Edit [^"]+">Edit</a>', html), step


def test_summary_with_own_servers_shows_them_and_a_secret_only_as_set(maintainer_client):
    base = start(maintainer_client)
    html = walk(maintainer_client, base, COMPANY, mail=STEP3).get_data(as_text=True)
    assert "pop.own.example.sk" in html and "STARTTLS" in html and "Use the built-in mail servers" in html
    assert not any(secret in html for secret in ("pop-typed-secret", "primary-typed-secret"))
    assert re.search(r"Primary SMTP: password\s*</dt>\s*<dd[^>]*>set</dd>", html)
