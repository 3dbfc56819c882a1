"""The `flask --app app …` administration commands."""

import pytest

from models import Customer, Operator
from services.operators import verify_password
from tests.conftest import written


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


def test_setup_creates_a_first_maintainer_once_and_prints_the_password_once(runner, session, monkeypatch):
    monkeypatch.delenv("ADMIN_EMAIL", raising=False)
    monkeypatch.delenv("ADMIN_PASSWORD", raising=False)
    first = runner.invoke(args=["setup"])
    assert first.exit_code == 0, first.output
    password = first.output.split("Password (shown only now): ")[1].split()[0]
    maintainer = session.query(Operator).filter_by(email="admin@example.com").one()
    assert maintainer.is_maintainer and verify_password(maintainer.password_hash, password)
    assert "New database: demo data loaded." in first.output
    assert session.query(Customer).filter(Customer.last_name == "Kováč").count() == 1

    second = runner.invoke(args=["setup"])
    assert second.exit_code == 0 and "Password" not in second.output
    assert "admin@example.com is ready" in second.output
    assert session.query(Operator).filter_by(role="maintainer").count() == 1


def test_setup_with_admin_email_and_password_creates_or_keeps_that_maintainer(runner, session, monkeypatch):
    monkeypatch.setenv("ADMIN_EMAIL", "Chief@Example.com")
    monkeypatch.setenv("ADMIN_PASSWORD", "chosen password 1")
    result = runner.invoke(args=["setup", "--no-demo"])
    assert result.exit_code == 0 and "Password" not in result.output
    chief = session.query(Operator).filter_by(email="chief@example.com").one()
    assert verify_password(chief.password_hash, "chosen password 1")
    assert session.query(Customer).count() == 0

    monkeypatch.setenv("ADMIN_PASSWORD", "a different password")
    assert runner.invoke(args=["setup"]).exit_code == 0
    session.expire_all()
    assert verify_password(session.get(Operator, chief.id).password_hash, "chosen password 1")


def test_create_maintainer_command(runner, session):
    result = runner.invoke(args=["create-maintainer", "ops@example.com", "--password",
                                 "long enough pw", "--first-name", "Ops"])
    assert result.exit_code == 0, result.output
    assert session.query(Operator).filter_by(email="ops@example.com").one().is_maintainer
    again = runner.invoke(args=["create-maintainer", "ops@example.com", "--password", "long enough pw"])
    assert again.exit_code == 1 and "already signs in" in again.output


def test_load_demo_only_into_an_empty_database(runner, session):
    assert "Demo data loaded." in runner.invoke(args=["load-demo"]).output
    count = session.query(Customer).count()
    assert count >= 5
    # The demo request has a thread (an internal note among it), mailed to nobody, and the
    # company's main contact has portal access.
    from models import OutgoingMail, PortalAccount, RequestComment

    assert session.query(RequestComment).count() == 3
    assert session.query(RequestComment).filter_by(is_internal=True).count() == 1
    assert session.query(OutgoingMail).count() == 0
    assert session.query(PortalAccount).filter(PortalAccount.contact_id.isnot(None)).count() == 1
    assert "not loaded" in runner.invoke(args=["load-demo"]).output
    assert session.query(Customer).count() == count


def test_a_refused_command_prints_its_reason_and_exits_1_without_a_traceback(runner, session):
    result = runner.invoke(args=["create-maintainer", "short@example.com", "--password", "short"])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert "password: Use at least 10 characters." in result.output and "Traceback" not in result.output
    assert session.query(Operator).count() == 0


def test_setup_is_one_unit_of_work_nothing_is_kept_when_the_maintainer_is_refused(runner, session,
                                                                                   monkeypatch):
    monkeypatch.setenv("ADMIN_EMAIL", "chief@example.com")
    monkeypatch.setenv("ADMIN_PASSWORD", "short")
    result = runner.invoke(args=["setup"])
    assert result.exit_code == 1 and "Use at least 10 characters." in result.output
    assert "Traceback" not in result.output and "demo data loaded" not in result.output
    session.expire_all()
    assert session.query(Customer).count() == 0 and session.query(Operator).count() == 0


def test_tokens_create_commits_the_token_and_refuses_a_bad_name_with_a_message(runner, session, operator):
    from models import ApiToken
    from services.api_tokens import authenticate_token

    refused = runner.invoke(args=["tokens", "create", operator.email, "--name", "x" * 121])
    assert refused.exit_code == 1 and "At most 120 characters" in refused.output
    assert "Traceback" not in refused.output and session.query(ApiToken).count() == 0
    created = runner.invoke(args=["tokens", "create", operator.email, "--name", "cron"])
    assert created.exit_code == 0, created.output
    token = created.output.strip().splitlines()[-1]
    session.expire_all()
    assert written(session, lambda: authenticate_token(session, token)).id == operator.id
