"""Password hashing at a configured cost, a bounded number at once (issue 15, point 5).

argon2id's memory, passes and lanes come from the configuration (ARGON2_MEMORY_KIB, default
OWASP's 19 MiB; ARGON2_TIME_COST 2; ARGON2_PARALLELISM 1). Hashes of the old profile (argon2-cffi's
default: 64 MiB, 3 passes, 4 lanes — 16 sign-ins at once took a process to 1.1 GB) still verify
and are replaced at the next successful sign-in, operators and portal accounts alike. At most
ARGON2_CONCURRENT_HASHES hashes or verifications run at once in a process: sixteen sign-ins at
once over real HTTP are counted as they enter argon2 (bench/sign_in_memory.py has the memory)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import argon2
from argon2 import PasswordHasher, extract_parameters
from sqlalchemy import select

from extensions import db
from models import Operator, PortalAccount
from models.enums import CustomerKind
from services.operators import create_operator
from services.portal import check_portal_password, create_portal_account
from services.transactions import unit_of_work
from tests.conftest import PASSWORD, make_app
from tests.served_app import WebClient, served

OLD_PROFILE = PasswordHasher()  # argon2-cffi's default: what the desk stored before


def profile_of(password_hash: str) -> tuple[int, int, int, argon2.Type]:
    parameters = extract_parameters(password_hash)
    return parameters.memory_cost, parameters.time_cost, parameters.parallelism, parameters.type


def test_the_default_profile_is_owasps_argon2id_minimum(make_operator):
    assert profile_of(make_operator("plain@example.com").password_hash) == (19 * 1024, 2, 1, argon2.Type.ID)
    assert profile_of(OLD_PROFILE.hash("x")) == (64 * 1024, 3, 4, argon2.Type.ID)  # what it replaces


def test_the_cost_follows_the_configuration(app, database_url, new_customer):
    costly = make_app(database_url, ARGON2_MEMORY_KIB=8 * 1024, ARGON2_TIME_COST=3, ARGON2_PARALLELISM=2)
    customer = new_customer(kind=CustomerKind.PERSON, first_name="Petra", last_name="Portálová")
    with costly.app_context(), unit_of_work(db.session):
        operator = create_operator(db.session, email="costly@example.com", password=PASSWORD,
                                   first_name="Cora", last_name="Costly")
        account = create_portal_account(db.session, db.session.get(type(customer), customer.id), None,
                                        username="petra", password=PASSWORD, security_group=None)
        hashes = operator.password_hash, account.password_hash
    assert [profile_of(h) for h in hashes] == [(8 * 1024, 3, 2, argon2.Type.ID)] * 2
    assert costly.extensions["password_hashing"].profile.concurrent == 2  # ARGON2_CONCURRENT_HASHES


def set_hash(session, record, password_hash: str) -> None:
    with unit_of_work(session):
        record.password_hash = password_hash


def stored_hash(session, model, record_id: int) -> str:
    session.expire_all()
    return session.scalar(select(model.password_hash).where(model.id == record_id))


def test_an_operator_with_an_old_profile_hash_signs_in_and_is_moved_to_the_current_one(
        client, session, make_operator):
    operator = make_operator("veteran@example.com")
    old = OLD_PROFILE.hash(PASSWORD)
    set_hash(session, operator, old)
    assert client.login(operator.email, "not the password").status_code == 422
    assert stored_hash(session, Operator, operator.id) == old  # a failure changes nothing
    assert client.login(operator.email).status_code == 302
    upgraded = stored_hash(session, Operator, operator.id)
    assert profile_of(upgraded) == (19 * 1024, 2, 1, argon2.Type.ID)
    client.client.delete_cookie("session")
    assert client.login(operator.email).status_code == 302
    assert stored_hash(session, Operator, operator.id) == upgraded  # current already: kept


def test_a_portal_account_with_an_old_profile_hash_is_moved_to_the_current_one(session, new_customer):
    customer = new_customer(kind=CustomerKind.PERSON, first_name="Peter", last_name="Portál")
    with unit_of_work(session):
        account = create_portal_account(session, customer, None, username="peter", password=PASSWORD,
                                        security_group=None)
    old = OLD_PROFILE.hash(PASSWORD)
    set_hash(session, account, old)
    version = session.get(PortalAccount, account.id).version
    with unit_of_work(session):
        assert not check_portal_password(session, account, "not the password")
    assert stored_hash(session, PortalAccount, account.id) == old
    with unit_of_work(session):
        assert check_portal_password(session, account, PASSWORD)
    assert profile_of(stored_hash(session, PortalAccount, account.id)) == (19 * 1024, 2, 1, argon2.Type.ID)
    # Bookkeeping, not a change somebody made: a page open on the account does not turn stale.
    assert session.get(PortalAccount, account.id).version == version
    with unit_of_work(session):
        assert check_portal_password(session, account, PASSWORD)


class Entries:
    """How many threads are inside argon2 at once: each hash or verification is counted as it
    enters and leaves (and holds its place a moment, so that entries would overlap unless
    something keeps them apart)."""

    def __init__(self) -> None:
        self.inside = self.peak = self.total = 0
        self.guard = threading.Lock()

    def wrap(self, method):
        def counted(*args, **kwargs):
            with self.guard:
                self.inside += 1
                self.total += 1
                self.peak = max(self.peak, self.inside)
            try:
                threading.Event().wait(0.02)
                return method(*args, **kwargs)
            finally:
                with self.guard:
                    self.inside -= 1
        return counted


SIGN_INS = 16
BOUND = 2


def test_sixteen_sign_ins_at_once_never_hash_more_than_the_bound_at_once(app, database_url, monkeypatch):
    served_app = make_app(database_url, ARGON2_CONCURRENT_HASHES=BOUND, ARGON2_MEMORY_KIB=2048,
                          ARGON2_TIME_COST=1)
    with served_app.app_context(), unit_of_work(db.session):
        emails = [f"rush.{n}@example.com" for n in range(SIGN_INS)]
        for n, email in enumerate(emails):
            create_operator(db.session, email=email, password=PASSWORD, first_name="Rush",
                            last_name=f"Hour {n}")
    entries = Entries()
    monkeypatch.setattr(PasswordHasher, "hash", entries.wrap(PasswordHasher.hash))
    monkeypatch.setattr(PasswordHasher, "verify", entries.wrap(PasswordHasher.verify))
    with served(served_app) as server:
        browsers = [WebClient(server.url) for _ in emails]
        barrier = threading.Barrier(SIGN_INS)

        def sign_in(pair) -> None:
            browser, email = pair
            barrier.wait(timeout=60)
            browser.login(email)  # asserts the redirect of a successful sign-in

        with ThreadPoolExecutor(max_workers=SIGN_INS) as pool:
            list(pool.map(sign_in, zip(browsers, emails, strict=True)))
        for browser in browsers:
            browser.close()
    assert entries.total >= SIGN_INS  # every sign-in verified its password
    assert entries.peak == BOUND, f"{entries.peak} hashes at once; the bound is {BOUND}"

