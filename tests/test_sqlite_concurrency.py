"""SQLite never locks users out (issue 15, point 2), proved with real HTTP on a database file.

The app is served by a threaded werkzeug server (tests/served_app.py) on a SQLite file of its
own. Operators sign in, create customers, edit them and raise requests through the panel while,
in threads of the same process, three long pieces of background work run on the same file:

- (a) the preview of a 20,000-row CSV file: services.bulk_import.run_import as a dry run on
  services.dry_runs.dry_run_session (what the preview job does);
- (b) a real import of 3,000 rows, committing batch by batch (services.batches);
- (c) a dry run of a directory import against slapd (tests/ldap_fixtures.py's 2,100 accounts)
  through services.directory.pipeline.sync_directory.

The background work takes minutes on a busy machine; it runs for as long as the users work and
is then stopped (the preview and the import at their next row, the directory dry run cancelled
as a maintainer does): what matters is that all three held their transactions open for the
whole time the users wrote. A user must see no error — no 500, no "database is locked", no
request refused — every user write must be in the database, the import's committed batches
too, and the dry runs must have written nothing but their run's state.
"""

from __future__ import annotations

import threading
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from urllib.parse import urlencode, urljoin, urlsplit

import pytest
from sqlalchemy import func, select, text

from extensions import db
from models import Customer, DirectorySource, DirectorySyncRun, Operator, Request
from models.enums import OperatorRole, SyncRunStatus
from services.bulk_import import MatchRule, OnMatch, run_import
from services.bulk_import_files import read_table, suggest_mapping
from services.customers import SaveOptions, default_status
from services.directory.pipeline import SyncOptions, sync_directory
from services.directory.runs import cancel_run
from services.dry_runs import dry_run_session
from services.operators import create_operator
from services.reference_data import ensure_reference_data
from services.transactions import unit_of_work
from testing.forms import Forms
from tests.conftest import PASSWORD, make_app, migrate_to_head
from tests.served_app import WebClient, last_line, page_text, served
from tests.test_directory_import import BOX, make_source

USERS = 6
ROUNDS = 3  # per user: sign in, then create a customer, edit it and raise a request for it
PREVIEW_ROWS = 20_000
IMPORT_ROWS = 3_000
HEADER = "Názov firmy;E-mail;Meno kontaktu;Priezvisko kontaktu;E-mail kontaktu\n"
SYLLABLES = ("ba", "ce", "di", "fo", "gu", "ha", "ji", "ko", "lu", "mo", "ne", "pi", "ro", "su", "ty")
BOSS = "sqlite.boss@example.com"
OPTIONS = SaveOptions("SK")


def word(number: int) -> str:
    """A made-up name part of its own for each number ("Bacedi"): rows that are no duplicates."""
    letters = ""
    while True:
        number, digit = divmod(number, len(SYLLABLES))
        letters += SYLLABLES[digit]
        if not number:
            return letters.title()


def company_rows(count: int, domain: str) -> bytes:
    """A CSV of `count` new companies, each with its main contact, all e-mails at `domain`."""
    lines = [HEADER]
    for n in range(count):
        lines.append(f"{word(n + 50_000)} {word(n * 7 + 11)} s.r.o.;office{n}@{domain};Jana;{word(n + 900)};"
                     f"jana{n}@{domain}\n")
    return "".join(lines).encode()


class Stop(Exception):
    """Raised by the test into a background run when the users are done."""


@dataclass
class Background:
    """One piece of background work in a thread: started when it reports its first row."""

    name: str
    started: threading.Event = field(default_factory=threading.Event)
    error: str = ""
    progress: int = 0
    outcome: object = None


def run_in_thread(app, work: Background, body) -> threading.Thread:
    def target():
        with app.app_context():
            try:
                work.outcome = body()
            except Stop:
                pass
            except Exception as exc:  # a failure of the background work fails the test
                work.error = f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"
            finally:
                work.started.set()  # a run that failed before its first row does not hold the test
                db.session.remove()

    thread = threading.Thread(target=target, name=work.name, daemon=True)
    thread.start()
    return thread


@dataclass
class UserLog:
    """What one user did and saw."""

    email: str
    errors: list[str] = field(default_factory=list)
    customers: dict[str, str] = field(default_factory=dict)  # e-mail → the note of its edit
    requests: list[str] = field(default_factory=list)  # subjects


def expect(log: UserLog, what: str, answer, status: int = 302) -> bool:
    if answer.status_code != status:
        log.errors.append(f"{what}: {answer.status_code} {page_text(answer.text)[:300]}")
        return False
    return True


def customer_id(app, email: str) -> int | None:
    with app.app_context():
        try:
            return db.session.scalar(select(Customer.id).where(Customer.email == email))
        finally:
            db.session.remove()


def form_values(html: str, page: str) -> dict[str, list[str]]:
    """The fields a browser posts unchanged from the form of `page` that posts back to it."""
    parser = Forms()
    parser.feed(html)
    for action, fields in parser.forms:
        if urlsplit(urljoin(page, action or page)).path == urlsplit(page).path:
            values: dict[str, list[str]] = {}
            for name, value in fields:
                values.setdefault(name, []).append(value)
            return values
    raise AssertionError(f"no form posting to {page}")


def user_work(app, base: str, number: int, status_id: int) -> UserLog:
    """Sign in, then per round: create a person, edit them (a note), raise a request for them."""
    email = f"user{number}@sqlite.example.sk"
    log = UserLog(email)
    for round_ in range(ROUNDS):
        client = WebClient(base)
        try:
            client.login(email)
        except AssertionError as exc:
            log.errors.append(f"sign-in: {exc}")
            client.close()
            continue
        try:
            person = f"person.{number}.{round_}@sqlite.example.sk"
            created = client.submit("/admin/customers/new/", {
                "kind": "person", "status": str(status_id), "first_name": "Eva",
                "last_name": f"{word(number * 10 + round_ + 3000)}", "email": person,
                "confirm_duplicate": "y"})
            if not expect(log, f"create {person}", created):
                continue
            record = customer_id(app, person)
            if record is None:
                log.errors.append(f"create {person}: answered 302 but not in the database")
                continue
            edit = f"/admin/customers/edit/?id={record}"
            page = client.get(edit)
            if not expect(log, f"edit page {person}", page, 200):
                continue
            values = form_values(page.text, edit)
            note = f"Called on round {round_} by {email}"
            values["notes"] = [note]
            values.pop("confirm_duplicate", None)
            saved = client.post(edit, data=urlencode(values, doseq=True),
                                headers={"Content-Type": "application/x-www-form-urlencoded"})
            if expect(log, f"edit {person}", saved):
                log.customers[person] = note
            subject = f"Printer jam {number}.{round_}"
            raised = client.submit(f"/admin/requests/new/?customer={record}",
                                   {"customer": str(record), "subject": subject, "status": "new"})
            if expect(log, f"request for {person}", raised):
                log.requests.append(subject)
        finally:
            client.close()
    return log


@pytest.fixture
def desk(tmp_path):
    """A migrated SQLite file with a maintainer and USERS operators, the app made on it."""
    url = f"sqlite:///{tmp_path / 'desk.db'}"
    migrate_to_head(url)
    app = make_app(url)
    with app.app_context():
        with unit_of_work(db.session):
            ensure_reference_data(db.session)
            create_operator(db.session, email=BOSS, password=PASSWORD, first_name="Sára",
                            last_name="Sqlite", role=OperatorRole.MAINTAINER)
            for number in range(USERS):
                create_operator(db.session, email=f"user{number}@sqlite.example.sk", password=PASSWORD,
                                first_name="Uma", last_name=f"User{number}", role=OperatorRole.OPERATOR)
        db.session.remove()
    try:
        yield app
    finally:
        with app.app_context():
            db.engine.dispose()


def test_users_write_while_a_preview_an_import_and_a_directory_dry_run_run(desk, big_directory):
    app = desk
    with app.app_context():
        boss = db.session.scalar(select(Operator).where(Operator.email == BOSS))
        source = make_source(db.session, boss, big_directory.server, page_size=100)
        source_id, boss_id, status_id = source.id, boss.id, default_status(db.session).id
        db.session.remove()
    preview_table = read_table(company_rows(PREVIEW_ROWS, "preview.example.sk"))
    import_table = read_table(company_rows(IMPORT_ROWS, "import.example.sk"))
    assert len(preview_table.rows) == PREVIEW_ROWS
    users_done = threading.Event()

    def reporter(work: Background):
        """`progress` of a run: counts its reports, and stops it once the users are done."""
        def progress(*_args):
            work.progress += 1
            work.started.set()
            if users_done.is_set() and work is not directory:  # the directory run is cancelled
                raise Stop
        return progress

    preview, real, directory = Background("preview"), Background("import"), Background("directory")

    def run_preview():
        with dry_run_session(db.session) as dry:
            return run_import(dry, dry.get(Operator, boss_id), preview_table.rows,
                              suggest_mapping(preview_table.headers), [MatchRule.EMAIL], OnMatch.UPDATE_EMPTY,
                              OPTIONS, dry_run=True, progress=reporter(preview))

    def run_real_import():
        return run_import(db.session, db.session.get(Operator, boss_id), import_table.rows,
                          suggest_mapping(import_table.headers), [MatchRule.EMAIL], OnMatch.UPDATE_EMPTY,
                          OPTIONS, dry_run=False, progress=reporter(real))

    def run_directory():
        return sync_directory(db.session, db.session.get(DirectorySource, source_id), BOX,
                              db.session.get(Operator, boss_id), SyncOptions(dry_run=True), OPTIONS,
                              progress=reporter(directory))

    with served(app) as server:
        mark = server.log.mark()
        threads = [run_in_thread(app, preview, run_preview), run_in_thread(app, real, run_real_import),
                   run_in_thread(app, directory, run_directory)]
        for work in (preview, real, directory):
            assert work.started.wait(120), f"the {work.name} did not start"
        with ThreadPoolExecutor(USERS) as pool:
            logs = list(pool.map(lambda n: user_work(app, server.url, n, status_id), range(USERS)))
        users_done.set()
        with app.app_context():  # as a maintainer cancels a run on the source's page
            run = db.session.scalar(select(DirectorySyncRun).where(DirectorySyncRun.source_id == source_id))
            if run is not None:
                with unit_of_work(db.session):
                    cancel_run(db.session, run, None)
            db.session.remove()
        for thread in threads:
            thread.join(120)
            assert not thread.is_alive(), f"{thread.name} did not stop"
        logged = server.log.since(mark)

    # What went wrong anywhere, in one list: a user's refused or failed request, the server's
    # errors, a background run that stopped.
    problems = [f"{log.email}: {entry}" for log in logs for entry in log.errors]
    problems += [f"server: {last_line(entry)}" for entry in logged]
    problems += [f"{work.name}: {work.error}" for work in (preview, real, directory) if work.error]
    requests_sent = USERS * ROUNDS * 5
    assert not problems, f"{len(problems)} problems ({requests_sent} user requests):\n" + "\n".join(problems)
    assert preview.progress > 0 and real.progress > 0  # both held their transactions meanwhile

    with app.app_context():
        session = db.session
        for log in logs:  # every user write landed
            for email, note in log.customers.items():
                assert session.scalar(select(Customer.notes).where(Customer.email == email)) == note
            assert len(log.customers) == ROUNDS and len(log.requests) == ROUNDS
        subjects = set(session.scalars(select(Request.subject)))
        assert {s for log in logs for s in log.requests} <= subjects
        # The import's committed batches are in; the dry runs wrote nothing.
        imported = session.scalar(select(func.count()).select_from(Customer)
                                  .where(Customer.email.like("%@import.example.sk")))
        assert imported > 0
        assert session.scalar(select(func.count()).select_from(Customer)
                              .where(Customer.email.like("%@preview.example.sk"))) == 0
        assert session.scalar(select(func.count()).select_from(Customer)
                              .where(Customer.sam_account_name.is_not(None))) == 0
        run = session.scalar(select(DirectorySyncRun).where(DirectorySyncRun.source_id == source_id))
        assert run.status in (SyncRunStatus.CANCELLED, SyncRunStatus.SUCCEEDED), run.message
        assert run.processed > 0
        assert session.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        db.session.remove()
