"""Bulk import of customers: reading files, mapping, match rules, preview = import, the pages."""

from __future__ import annotations

import io
import re
import time
from datetime import timedelta
from pathlib import Path

import pytest
from openpyxl import Workbook
from sqlalchemy import func, select, update

from jobs.bulk_import import check_bulk_import_leases, run_bulk_import, sweep_bulk_imports
from models import Contact, Customer
from models.base import utcnow
from models.bulk_import import BulkImport, BulkImportBatch, BulkImportStatus
from models.enums import CustomerKind
from services import bulk_import_runs as runs
from services.bulk_import import MatchRule, OnMatch, run_import
from services.bulk_import_files import (
    ImportFileError,
    read_table,
    rejected_csv,
    suggest_mapping,
)
from services.contacts import CONTACT_EMAIL_NEEDED
from services.customers import SaveOptions
from services.import_mappings import remember_mapping, remembered_mapping
from services.limits import max_length, too_long
from services.run_leases import CancelRequested
from services.transactions import CONFLICT, unit_of_work

OPTIONS = SaveOptions("SK")
HEADER = "Názov firmy;IČO;E-mail;Telefón;Meno kontaktu;Priezvisko kontaktu;E-mail kontaktu\n"
ROWS = ("Žilinská strojáreň s.r.o.;12345678;info@zs.sk;0905 123 456;Ľubica;Šťastná;lubica@zs.sk\n"
        "Košická pekáreň;87654321;pekaren@ke.sk;;Ján;Novák;jan@ke.sk\n")


def table(text: str, encoding="utf-8"):
    return read_table(text.encode(encoding))


def count(session, model=Customer) -> int:
    return session.scalar(select(func.count()).select_from(model))


def test_reads_utf8_with_bom_and_suggests_mapping():
    read = read_table(("\ufeff" + HEADER.replace(";", ",")).encode() + b"Acme,1,a@b.sk,,,,\n")
    assert read.encoding == "utf-8" and read.delimiter == ","
    assert read.headers[0] == "Názov firmy"
    mapping = suggest_mapping(read.headers)
    assert mapping["Názov firmy"] == "company_name" and mapping["IČO"] == "registration_number"
    assert mapping["E-mail"] == "email" and mapping["Telefón"] == "primary_phone"
    assert mapping["Priezvisko kontaktu"] == "contact_last_name"
    assert mapping["E-mail kontaktu"] == "contact_email"


def test_reads_windows_1250_semicolons():
    read = table(HEADER + ROWS, "cp1250")
    assert read.encoding == "cp1250" and read.delimiter == ";"
    assert read.rows[0].values["Názov firmy"] == "Žilinská strojáreň s.r.o."
    assert read.rows[0].values["Priezvisko kontaktu"] == "Šťastná"
    assert read.rows[0].number == 2


def test_refuses_broken_and_huge_files():
    with pytest.raises(ImportFileError, match="neither a CSV nor an XLSX"):
        read_table(b"\x00\x01\x02binary")
    with pytest.raises(ImportFileError, match="Excel file cannot be read"):
        read_table(b"PK\x03\x04not really a zip")
    with pytest.raises(ImportFileError, match="cannot be read as UTF-8"):
        read_table("Meno\nĽubica\n".encode("cp1250"), "utf-8")
    with pytest.raises(ImportFileError, match="larger than 5 MB"):
        read_table(b"a" * (5 * 1024 * 1024 + 1))
    with pytest.raises(ImportFileError, match="more than 20,000 rows \\(blank rows included\\)"):
        read_table(b"Meno\n" + b"x\n" * 20_001)


def test_mapping_is_remembered_per_header_set(session):
    headers = ["Firma", "Poznámka X"]
    assert remembered_mapping(session, headers) is None
    with unit_of_work(session):
        remember_mapping(session, headers, {"Firma": "company_name", "Poznámka X": "notes"})
    # Same names in another order, case and accents, plus the Reason of a rejected-rows report.
    again = ["poznamka x", "FIRMA", "Reason"]
    assert remembered_mapping(session, again) == {"poznamka x": "notes", "FIRMA": "company_name"}


def test_xlsx_with_diacritics_imports(app, session, maintainer):
    book = Workbook()
    sheet = book.active
    sheet.append(["Meno", "Priezvisko", "E-mail", "Telefón"])
    sheet.append(["Ľubica", "Šťastná", "lubica@example.sk", "+421 905 111 222"])
    sheet.append(["Peter", None, "peter@example.sk", None])
    data = io.BytesIO()
    book.save(data)
    read = read_table(data.getvalue())
    assert read.encoding == "xlsx"
    report = run_import(session, maintainer, read.rows, suggest_mapping(read.headers), [MatchRule.EMAIL],
                        OnMatch.UPDATE_EMPTY, OPTIONS, dry_run=False)
    assert report.counts()["created"] == 1 and report.counts()["rejected"] == 1
    person = session.scalar(select(Customer).where(Customer.last_name == "Šťastná"))
    assert person.kind == CustomerKind.PERSON and person.first_name == "Ľubica"
    assert person.primary_phone == "+421905111222"
    assert report.rejected[0].row == 3
    assert report.rejected[0].errors == [("Priezvisko", "A person needs a last name.")]


def summary(report):
    return {name: [(r.row, r.label, r.fields, r.reason) for r in getattr(report, name)]
            for name in ("created", "updated", "unchanged", "skipped", "duplicates", "rejected")}


def test_preview_equals_import_and_writes_nothing(app, session, maintainer, new_customer):
    new_customer(kind=CustomerKind.COMPANY, company_name="Košická pekáreň", registration_number="87654321")
    read = table(HEADER + ROWS + "Bez mena;;zle-email;;;;\n" + "Žilinská strojáreň;12345678;;;;;\n")
    mapping = suggest_mapping(read.headers)
    before = (count(session), count(session, Contact))
    preview = run_import(session, maintainer, read.rows, mapping, [MatchRule.REGISTRATION_NUMBER],
                         OnMatch.UPDATE_EMPTY, OPTIONS, dry_run=True, batch_size=2)
    assert (count(session), count(session, Contact)) == before
    assert preview.counts() == {"created": 1, "updated": 1, "unchanged": 1, "skipped": 0, "duplicates": 0,
                                "rejected": 1}
    done = run_import(session, maintainer, read.rows, mapping, [MatchRule.REGISTRATION_NUMBER],
                      OnMatch.UPDATE_EMPTY, OPTIONS, dry_run=False, batch_size=2)
    assert summary(done) == summary(preview)
    assert count(session) == before[0] + 1
    company = session.scalar(select(Customer).where(Customer.registration_number == "12345678"))
    assert company.company_name == "Žilinská strojáreň s.r.o."
    assert [c.last_name for c in company.contacts] == ["Šťastná"]
    assert done.rejected[0].errors == [("E-mail", done.rejected[0].errors[0][1])]


def test_rejected_rows_report_can_be_corrected_and_uploaded_again(app, session, maintainer, tmp_path):
    read = table(HEADER + "Dobrá firma;11111111;dobra@firma.sk;;Dana;Dobrá;dana@firma.sk\n"
                 "Zlá firma;22222222;toto-nie-je-email;;Zora;Zlá;zora@firma.sk\n"
                 ";33333333;;;Tina;Tretia;tina@firma.sk\n")
    mapping = suggest_mapping(read.headers)
    with unit_of_work(session):
        remember_mapping(session, read.headers, mapping)
    report = run_import(session, maintainer, read.rows, mapping, [], OnMatch.SKIP, OPTIONS, dry_run=False)
    assert [r.row for r in report.rejected] == [3, 4]
    csv_bytes = rejected_csv(read.headers, [r.__dict__ for r in report.rejected])
    assert csv_bytes.startswith("\ufeff".encode())
    text = csv_bytes.decode("utf-8-sig")
    assert text.splitlines()[0].endswith(";Reason")
    assert "E-mail:" in text.splitlines()[1] and "Názov firmy:" in text.splitlines()[2]

    corrected = text.replace("toto-nie-je-email", "zla@firma.sk").replace(";33333333", "Tretia;33333333")
    again = read_table(corrected.encode("utf-8-sig"))
    remembered = remembered_mapping(session, again.headers)
    assert remembered == mapping  # the Reason column is no part of the mapping
    second = run_import(session, maintainer, again.rows, remembered, [], OnMatch.SKIP, OPTIONS, dry_run=False)
    assert second.counts()["created"] == 2 and not second.rejected


def test_duplicate_of_existing_customer_is_skipped_with_candidate(app, session, maintainer, new_customer):
    new_customer(kind=CustomerKind.COMPANY, company_name="Stará firma", registration_number="44444444",
                 email="stara@firma.sk")
    read = table("Firma;IČO;E-mail\nÚplne iná;44444444;\nNová;;stara@firma.sk\n")
    report = run_import(session, maintainer, read.rows, suggest_mapping(read.headers), [MatchRule.EMAIL],
                        OnMatch.UPDATE_ALL, OPTIONS, dry_run=False)
    # Row 2: not matched by e-mail; its IČO belongs to another customer: the create command's
    # duplicate refusal names that customer, as the quick form and the API would.
    assert not report.rejected
    assert [(r.row, r.candidates[0]["label"], r.candidates[0]["reasons"]) for r in report.duplicates] == [
        (2, "Stará firma", ["same company ID"])]
    assert [r.row for r in report.updated] == [3]  # row 3 matched by e-mail
    assert count(session) == 1
    # Not matched (no rules), and the e-mail is a strong match: the command's duplicate
    # refusal, reported with its candidate, as the quick form would show it.
    read = table("Firma;E-mail;E-mail kontaktu;Priezvisko kontaktu\nCelkom nová;stara@firma.sk;n@n.sk;Nový\n")
    report = run_import(session, maintainer, read.rows, suggest_mapping(read.headers), [], OnMatch.SKIP,
                        OPTIONS, dry_run=False)
    assert [(r.row, r.label, r.candidates[0]["label"], r.candidates[0]["reasons"])
            for r in report.duplicates] == [(2, "Celkom nová", "Nová", ["same e-mail"])]  # renamed by row 3
    assert "Nová (same e-mail)" in report.duplicates[0].reason
    assert count(session) == 1


@pytest.mark.parametrize("on_match, expected", [
    (OnMatch.UPDATE_EMPTY, ("Pôvodný názov", "nova@firma.sk", "Poznámka")),
    (OnMatch.UPDATE_ALL, ("Nový názov", "nova@firma.sk", "Poznámka")),
])
def test_match_by_ico_updates_empty_or_all_fields(app, session, maintainer, new_customer, on_match, expected):
    new_customer(kind=CustomerKind.COMPANY, company_name="Pôvodný názov", registration_number="55 555 555")
    read = table("Názov firmy;IČO;E-mail;Poznámka\nNový názov;55555555;nova@firma.sk;Poznámka\n")
    report = run_import(session, maintainer, read.rows, suggest_mapping(read.headers),
                        [MatchRule.REGISTRATION_NUMBER], on_match, OPTIONS, dry_run=False)
    company = session.scalar(select(Customer))
    assert (company.company_name, company.email, company.notes) == expected
    changed = {"E-mail", "Poznámka"} | ({"Názov firmy"} if on_match == OnMatch.UPDATE_ALL else set())
    assert set(report.updated[0].fields) == changed
    again = run_import(session, maintainer, read.rows, suggest_mapping(read.headers),
                       [MatchRule.REGISTRATION_NUMBER], on_match, OPTIONS, dry_run=False)
    assert again.counts()["unchanged"] == 1


def test_operator_cannot_update_customer_they_may_not_edit(app, session, operator, maintainer, new_customer):
    new_customer(maintainer, kind=CustomerKind.COMPANY, company_name="Cudzia firma",
                 registration_number="66666666")
    read = table("Firma;IČO;Poznámka;Priezvisko kontaktu;E-mail kontaktu\n"
                 "Cudzia firma;66666666;zmena;;\nMoja firma;77777777;;Môj;moj@firma.sk\n")
    report = run_import(session, operator, read.rows, suggest_mapping(read.headers),
                        [MatchRule.REGISTRATION_NUMBER], OnMatch.UPDATE_ALL, OPTIONS, dry_run=False)
    assert [r.row for r in report.rejected] == [2]
    assert "may not edit" in report.rejected[0].reason
    assert [r.label for r in report.created] == ["Moja firma"]
    assert session.scalar(select(Customer).where(Customer.registration_number == "66666666")).notes is None


def test_a_company_row_without_an_email_contact_is_rejected_with_the_reason(app, session, maintainer):
    read = table(HEADER + "Bez kontaktu;11111111;info@bez-kontaktu.sk;;;;\n"
                 "Kontakt bez e-mailu;22222222;;;Karol;Bezmailový;\n"
                 "S kontaktom;33333333;;;Sára;Mailová;sara@s-kontaktom.sk\n")
    report = run_import(session, maintainer, read.rows, suggest_mapping(read.headers), [], OnMatch.SKIP,
                        OPTIONS, dry_run=False)
    # The company-contact rule holds on every door (issue 12): a new company needs a contact
    # with an e-mail; the refusal points at the contact's e-mail column.
    assert [r.label for r in report.created] == ["S kontaktom"]
    assert [(r.row, r.errors) for r in report.rejected] == [
        (2, [("E-mail kontaktu", CONTACT_EMAIL_NEEDED)]), (3, [("E-mail kontaktu", CONTACT_EMAIL_NEEDED)])]
    lines = rejected_csv(read.headers, [r.__dict__ for r in report.rejected]).decode("utf-8-sig").splitlines()
    assert lines[1].startswith("Bez kontaktu;11111111;info@bez-kontaktu.sk;")
    assert f"E-mail kontaktu: {CONTACT_EMAIL_NEEDED}" in lines[1]
    assert count(session) == 1 and count(session, Contact) == 1


def test_a_value_longer_than_its_column_rejects_only_its_row_with_the_column_named(
        app, session, maintainer, new_customer):
    new_customer(kind=CustomerKind.COMPANY, company_name="Stará firma", registration_number="44444444")
    name_limit, contact_limit = max_length(Customer.company_name), max_length(Contact.last_name)
    assert (name_limit, contact_limit) == (200, 80)
    too_long_name = "Dlhá firma " + "D" * (name_limit - 10)  # 201 characters
    read = table(HEADER + f"{too_long_name};11111111;;;Dana;Dlhá;dana@dlha.sk\n"
                 f"Krátka firma;22222222;;;Kamil;{'K' * (contact_limit + 1)};kamil@kratka.sk\n"
                 "Dobrá firma;33333333;;;Dana;Dobrá;dana@dobra.sk\n"
                 f"{too_long_name};44444444;;;;;\n")
    expected = [(2, [("Názov firmy", too_long(name_limit, name_limit + 1))]),
                (3, [("Priezvisko kontaktu", too_long(contact_limit, contact_limit + 1))]),
                (5, [("Názov firmy", too_long(name_limit, name_limit + 1))])]  # an update, refused too
    for dry_run in (True, False):
        report = run_import(session, maintainer, read.rows, suggest_mapping(read.headers),
                            [MatchRule.REGISTRATION_NUMBER], OnMatch.UPDATE_ALL, OPTIONS, dry_run=dry_run)
        assert [(r.row, r.errors) for r in report.rejected] == expected
        assert [r.label for r in report.created] == ["Dobrá firma"]
    session.expire_all()
    assert sorted(c.company_name for c in session.scalars(select(Customer))) == ["Dobrá firma", "Stará firma"]


def test_a_row_the_database_refuses_drops_alone(app, session, maintainer, monkeypatch):
    # Two rows racing for one company ID past the checks (as two imports at once could): the
    # database's unique key refuses the second at its flush; only that row's savepoint goes.
    monkeypatch.setattr("services.customers._check_unique", lambda *args: None)
    monkeypatch.setattr("services.duplicates.refuse_duplicates", lambda *args, **kwargs: None)
    read = table(HEADER + "Prvá;12345678;;;Pavol;Prvý;pavol@prva.sk\n"
                 "Druhá;12345678;;;Dana;Druhá;dana@druha.sk\n"
                 "Tretia;87654321;;;Tibor;Tretí;tibor@tretia.sk\n")
    for dry_run in (True, False):
        report = run_import(session, maintainer, read.rows, suggest_mapping(read.headers), [], OnMatch.SKIP,
                            OPTIONS, dry_run=dry_run)
        assert [r.label for r in report.created] == ["Prvá", "Tretia"]
        assert [r.row for r in report.rejected] == [3]
        assert report.rejected[0].errors in (
            [("IČO", "Another customer has this company ID.")],  # PostgreSQL names the constraint
            [("", CONFLICT)])  # SQLite does not
    session.expire_all()
    assert sorted(c.company_name for c in session.scalars(select(Customer))) == ["Prvá", "Tretia"]


# -- the pages ---------------------------------------------------------------------------------
# The app of these tests runs jobs at once (JOB_QUEUE_IMMEDIATE): a preview or an import is done
# when the POST that queued it answers. tests/test_bulk_import_jobs.py runs them on real workers.

def upload(browser, data: bytes, name="zakaznici.csv", encoding="auto"):
    return browser.submit("/admin/customers/import/", {"file": (io.BytesIO(data), name),
                                                       "encoding": encoding},
                          content_type="multipart/form-data")


def suggested(browser, mapping_url: str) -> dict[str, str]:
    page = browser.get(mapping_url).get_data(as_text=True)
    return dict(re.findall(r'<select[^>]*name="(map-\d+)"[^>]*>.*?value="([a-z_]*)" selected', page, re.S))


def previewed(browser, data: bytes, rules=("registration_number", "email"), on_match="update_empty") -> str:
    """Upload `data`, take the suggested mapping, queue the preview (done at once here): the token."""
    mapping_url = upload(browser, data).headers["Location"]
    answer = browser.submit(mapping_url, {**suggested(browser, mapping_url), "rule": list(rules),
                                          "on_match": on_match})
    assert answer.status_code == 302, answer.get_data(as_text=True)[:500]
    return mapping_url.rsplit("/", 1)[1]


def press(browser, action: str, token: str):
    """A button of the import's pages (run, resume, cancel): a POST with the session's CSRF token."""
    base = "/admin/customers/import"
    return browser.submit(f"{base}/", {}, post_url=f"{base}/{action}/{token}")


def wait_until_done(browser, result_url: str) -> dict:
    for _ in range(200):
        status = browser.get(result_url.replace("/result/", "/status/") + ".json").get_json()
        if status["done"]:
            return status
        time.sleep(0.05)
    raise AssertionError("the import did not end")


def run_of(session, token: str) -> BulkImport:
    session.expire_all()
    return session.scalar(select(BulkImport).where(BulkImport.token == token))


def test_pages_upload_map_preview_import_and_download(operator_client, app, session):
    answer = upload(operator_client, (HEADER + ROWS + "Zlá firma;99999999;zle;;;;\n").encode("cp1250"))
    assert answer.status_code == 302
    mapping_url = answer.headers["Location"]
    page = operator_client.get(mapping_url).get_data(as_text=True)
    assert "Názov firmy" in page and 'value="company_name" selected' in page
    answer = operator_client.submit(mapping_url, {**suggested(operator_client, mapping_url),
                                                  "rule": ["registration_number", "email"],
                                                  "on_match": "update_empty"})
    assert answer.status_code == 302
    preview_url = answer.headers["Location"]
    page = operator_client.get(preview_url).get_data(as_text=True)
    assert "Would create" in page and "Žilinská strojáreň s.r.o." in page
    assert count(session) == 0
    answer = operator_client.submit(preview_url, {}, post_url=preview_url.replace("/preview/", "/run/"))
    assert answer.status_code == 302
    result_url = answer.headers["Location"]
    assert wait_until_done(operator_client, result_url)["counts"]["created"] == 2
    page = operator_client.get(result_url).get_data(as_text=True)
    assert "Import finished." in page and "Created" in page and "download-rejected" in page
    rejected = operator_client.get(result_url.replace("/result/", "/rejected/") + ".csv")
    lines = rejected.get_data().decode("utf-8-sig").splitlines()
    assert lines[0].endswith(";Reason") and lines[1].startswith("Zlá firma;99999999;zle;")
    assert "E-mail:" in lines[1]
    session.expire_all()
    assert count(session) == 2


def test_the_upload_and_its_state_live_in_the_database_not_in_a_folder(operator_client, app, session):
    data = (HEADER + ROWS).encode()
    token = previewed(operator_client, data)
    run = run_of(session, token)
    # The file is kept as uploaded until it is imported; nothing is written to the instance folder.
    assert run.data == data and run.total == 2 and run.status == BulkImportStatus.PREVIEWED
    assert run.preview_report["counts"]["created"] == 2 and run.mapping["IČO"] == "registration_number"
    assert not any(Path(app.config["BULK_IMPORT_DIR"]).iterdir())
    assert not (Path(app.instance_path) / "bulk_import").exists()
    press(operator_client, "run", token)
    run = run_of(session, token)
    assert run.status == BulkImportStatus.DONE and (run.done, run.total) == (2, 2)
    assert run.data is None and run.preview_report is None  # let go once imported; one report kept
    assert run.result_report["counts"]["created"] == 2
    assert session.scalar(select(func.count()).select_from(BulkImportBatch)) == 0


def test_pages_refuse_bad_files_with_a_message(operator_client):
    answer = upload(operator_client, b"\x00\x01binary")
    assert answer.status_code == 400
    assert "neither a CSV nor an XLSX" in answer.get_data(as_text=True)
    page = operator_client.submit("/admin/customers/import/", {"encoding": "auto"})
    assert page.status_code == 400 and "Choose a file" in page.get_data(as_text=True)


def test_a_file_that_no_longer_reads_sends_the_preview_back_with_a_message(operator_client, session):
    mapping_url = upload(operator_client, b"Firma;E-mail\nAcme;a@acme.sk\n", name="a.csv").headers["Location"]
    token = mapping_url.rsplit("/", 1)[1]
    with unit_of_work(session):
        session.execute(update(BulkImport).where(BulkImport.token == token).values(data=b"\x00 broken"))
    answer = operator_client.submit(mapping_url, {"map-0": "company_name", "map-1": "email",
                                                  "rule": ["email"], "on_match": "update_empty"})
    assert answer.status_code == 302
    page = operator_client.get(answer.headers["Location"])  # the preview page: back to the mapping
    assert page.status_code == 302 and page.headers["Location"].endswith(mapping_url)
    page = operator_client.get(mapping_url).get_data(as_text=True)
    assert "no longer available; upload it again" in page and "Acme" in page
    assert run_of(session, token).status == BulkImportStatus.UPLOADED


def test_another_operator_cannot_open_or_change_my_upload(operator_client, maintainer_client, session):
    token = previewed(operator_client, (HEADER + ROWS).encode())
    before = run_of(session, token)
    state = (before.status, before.updated_at)
    base = "/admin/customers/import"
    for url in (f"{base}/mapping/{token}", f"{base}/preview/{token}", f"{base}/result/{token}",
                f"{base}/status/{token}.json", f"{base}/rejected/{token}.csv"):
        assert maintainer_client.get(url).status_code == 404, url
    for action in ("run", "resume", "cancel"):
        answer = press(maintainer_client, action, token)
        assert answer.status_code == 404, action
    assert maintainer_client.submit(f"{base}/", {"map-0": "notes", "on_match": "skip"},
                                    post_url=f"{base}/mapping/{token}").status_code == 404
    after = run_of(session, token)
    assert (after.status, after.updated_at) == state and count(session) == 0


def test_pressing_run_import_twice_imports_once(operator_client, session):
    token = previewed(operator_client, (HEADER + ROWS).encode())
    for _ in range(2):  # the second press (a double click, a second tab) finds it queued or done
        answer = press(operator_client, "run", token)
        assert answer.status_code == 302 and answer.headers["Location"].endswith(f"/result/{token}")
    run = run_of(session, token)
    assert run.status == BulkImportStatus.DONE and run.result_report["counts"]["created"] == 2
    assert count(session) == 2


def dead_worker_imported(session, token: str, batches_committed: int) -> None:
    """As a worker that was killed does it: the run claimed, `batches_committed` batches committed
    with their rows and beats, the next batch lost with the process (rolled back)."""
    dead = "dead-host:1:1"
    run = run_of(session, token)
    with unit_of_work(session):
        assert runs.queue_import(session, run)
        assert runs.start_import(session, run.id, dead)
    recorder = runs.BatchRecorder(session, run_of(session, token), dead)
    calls = []

    def after_batch(done, report):
        calls.append(done)
        if len(calls) > batches_committed:
            raise KeyboardInterrupt  # the process ends here: this batch never commits
        recorder(done, report)

    run = run_of(session, token)
    table = read_table(run.data)
    with pytest.raises(KeyboardInterrupt):
        run_import(session, run.owner, table.rows, run.mapping, run.rules, run.on_match, OPTIONS,
                   dry_run=False, batch_size=run.batch_size, after_batch=after_batch)
    with unit_of_work(session):  # the worker's lease lapses
        session.execute(update(BulkImport).where(BulkImport.token == token)
                        .values(heartbeat_at=utcnow() - timedelta(minutes=5)))


def people(n: int, start: int = 1) -> str:
    return "Meno;Priezvisko;E-mail\n" + "".join(f"Osoba;Číslo {i};osoba{i}@example.sk\n"
                                                 for i in range(start, start + n))


def test_an_interrupted_import_says_what_it_committed_and_resumes_from_the_next_row(
        operator_client, app, session):
    app.config["BULK_IMPORT_BATCH_SIZE"] = 2
    token = previewed(operator_client, people(7).encode(), rules=("email",))
    dead_worker_imported(session, token, batches_committed=2)
    assert count(session) == 4  # two batches of two
    result_url = f"/admin/customers/import/result/{token}"
    before = operator_client.get(result_url).get_data(as_text=True)
    assert "Importing" in before  # running, as far as anybody can tell before the lease check

    with app.app_context():
        check_bulk_import_leases()  # the periodic lease check
    run = run_of(session, token)
    assert run.status == BulkImportStatus.INTERRUPTED and run.worker is None
    page = operator_client.get(result_url).get_data(as_text=True)
    assert "The import was interrupted." in page
    assert ("The import was interrupted after 4 of 7 rows: its background worker stopped. Those 4 rows are "
            "imported. Resume continues from row 5.") in page
    assert 'data-testid="resume-import"' in page
    assert "Číslo 4, Osoba" in page and "Číslo 5, Osoba" not in page  # the rows committed are listed
    status = operator_client.get(f"/admin/customers/import/status/{token}.json").get_json()
    assert status["status"] == "interrupted" and status["done"]
    assert status["progress"] == {"done": 4, "total": 7}

    for _ in range(2):  # Resume pressed twice: one run
        press(operator_client, "resume", token)
    run = run_of(session, token)
    assert run.status == BulkImportStatus.DONE and run.done == 7
    assert run.result_report["counts"] == {"created": 7, "updated": 0, "unchanged": 0, "skipped": 0,
                                           "duplicates": 0, "rejected": 0}  # both parts, each row once
    assert [r["row"] for r in run.result_report["created"]] == list(range(2, 9))
    emails = session.scalars(select(Customer.email)).all()
    assert sorted(emails) == sorted(f"osoba{i}@example.sk" for i in range(1, 8))  # each row once
    page = operator_client.get(result_url).get_data(as_text=True)
    assert "Import finished." in page and 'data-testid="resume-import"' not in page


def test_cancel_ends_a_queued_or_interrupted_import_and_asks_a_running_one_to_stop(
        operator_client, app, session):
    app.config["BULK_IMPORT_BATCH_SIZE"] = 2
    base = "/admin/customers/import"
    # Queued, no worker has it: cancelled at once, nothing imported, the file let go.
    queued = previewed(operator_client, people(3).encode(), rules=("email",))
    with unit_of_work(session):
        assert runs.queue_import(session, run_of(session, queued))
    page = operator_client.get(f"{base}/result/{queued}").get_data(as_text=True)
    assert "Waiting: the import starts as soon as a background worker is free." in page
    assert 'data-testid="cancel-import"' in page
    press(operator_client, "cancel", queued)
    run = run_of(session, queued)
    assert run.status == BulkImportStatus.CANCELLED and run.data is None
    assert run.message == "The import was cancelled before any row was imported."
    with app.app_context():  # a message still on the queue finds nothing to do
        run_bulk_import(run.id)
    assert run_of(session, queued).status == BulkImportStatus.CANCELLED and count(session) == 0

    # Running: asked; the worker stops at its next batch (its beat says so).
    running = previewed(operator_client, people(4, start=10).encode(), rules=("email",))
    with unit_of_work(session):
        assert runs.queue_import(session, run_of(session, running))
        assert runs.start_import(session, run_of(session, running).id, "w:1:1")
    press(operator_client, "cancel", running)
    page = operator_client.get(f"{base}/result/{running}").get_data(as_text=True)
    assert "Cancelling: the import stops after the rows it is saving now." in page
    with pytest.raises(CancelRequested), unit_of_work(session):
        runs.record_batch(session, run_of(session, running).id, done=2, counts={}, results={}, worker="w:1:1")

    # Interrupted: "Cancel the rest" ends it with what it committed.
    interrupted = previewed(operator_client, people(5, start=20).encode(), rules=("email",))
    dead_worker_imported(session, interrupted, batches_committed=1)
    with app.app_context():
        check_bulk_import_leases()
    press(operator_client, "cancel", interrupted)
    run = run_of(session, interrupted)
    assert run.status == BulkImportStatus.CANCELLED and run.data is None
    assert run.message == ("The import was cancelled after 2 of 5 rows. Those 2 rows are imported. "
                           "The rest were not.")
    assert run.result_report["counts"]["created"] == 2
    page = operator_client.get(f"{base}/result/{interrupted}").get_data(as_text=True)
    assert "The import was cancelled." in page and 'data-testid="resume-import"' not in page


def test_cancelling_an_import_whose_worker_is_gone_ends_it_at_once_with_what_it_committed(
        operator_client, app, session):
    """The worker died (its lease lapsed) but the lease check has not run yet: Cancel cannot wait
    for a worker that will never see the request. And a cancel asked of a running import whose
    worker then dies ends cancelled, not resumable."""
    app.config["BULK_IMPORT_BATCH_SIZE"] = 2
    gone = previewed(operator_client, people(5, start=30).encode(), rules=("email",))
    dead_worker_imported(session, gone, batches_committed=1)  # running, its lease lapsed
    assert run_of(session, gone).status == BulkImportStatus.RUNNING
    press(operator_client, "cancel", gone)
    run = run_of(session, gone)
    assert run.status == BulkImportStatus.CANCELLED and run.data is None
    assert run.result_report["counts"]["created"] == 2

    asked = previewed(operator_client, people(5, start=40).encode(), rules=("email",))
    with unit_of_work(session):
        assert runs.queue_import(session, run_of(session, asked))
        assert runs.start_import(session, run_of(session, asked).id, "w:2:2")
    press(operator_client, "cancel", asked)  # its worker is alive: asked to stop
    assert run_of(session, asked).status == BulkImportStatus.RUNNING
    page = operator_client.get(f"/admin/customers/import/result/{asked}").get_data(as_text=True)
    assert 'data-testid="cancel-import"' not in page  # asked already
    session.execute(update(BulkImport).where(BulkImport.token == asked)
                    .values(heartbeat_at=utcnow() - timedelta(hours=1)))  # … and then it died
    session.commit()
    with app.app_context():
        check_bulk_import_leases()
    run = run_of(session, asked)
    assert run.status == BulkImportStatus.CANCELLED and run.data is None
    page = operator_client.get(f"/admin/customers/import/result/{asked}").get_data(as_text=True)
    assert "The import was cancelled." in page and 'data-testid="resume-import"' not in page


def test_the_lease_check_sends_a_stalled_preview_back_and_delivers_a_forgotten_run_again(
        operator_client, app, session):
    data = (HEADER + ROWS).encode()
    stalled = upload(operator_client, data).headers["Location"].rsplit("/", 1)[1]
    with unit_of_work(session):  # a worker took the preview and died
        run = run_of(session, stalled)
        assert runs.queue_preview(session, run, mapping={"Názov firmy": "company_name"}, rules=[],
                                  on_match="skip", batch_size=200)
        assert runs.start_preview(session, run.id, "dead-host:1:1")
    forgotten = previewed(operator_client, people(2).encode(), rules=("email",))
    with unit_of_work(session):  # queued, but its message went with a worker killed at the wrong time
        assert runs.queue_import(session, run_of(session, forgotten))
        session.execute(update(BulkImport).values(updated_at=utcnow() - timedelta(minutes=10),
                                                  heartbeat_at=utcnow() - timedelta(minutes=10)))
    assert "The preview waits" not in operator_client.get(f"/admin/customers/import/preview/{stalled}") \
        .get_data(as_text=True)  # previewing, as far as anybody can tell
    with app.app_context():
        check_bulk_import_leases()
    assert run_of(session, stalled).status == BulkImportStatus.UPLOADED
    page = operator_client.get(f"/admin/customers/import/mapping/{stalled}").get_data(as_text=True)
    # the message, and the choice kept
    assert str(runs.PREVIEW_INTERRUPTED) in page and 'value="company_name" selected' in page
    assert run_of(session, forgotten).status == BulkImportStatus.DONE  # delivered again: run (here at once)
    assert count(session) == 2


def test_old_uploads_are_swept_by_the_periodic_job_never_by_a_page(operator_client, app, session):
    old, fresh = (previewed(operator_client, people(1, start=n).encode(), rules=("email",)) for n in (1, 2))
    with unit_of_work(session):
        session.execute(update(BulkImport).where(BulkImport.token == old)
                        .values(updated_at=utcnow() - timedelta(hours=25)))
    for url in ("/admin/customers/import/", f"/admin/customers/import/result/{fresh}"):
        operator_client.get(url)
    assert run_of(session, old) is not None  # a GET never writes
    with app.app_context():
        sweep_bulk_imports()
    assert run_of(session, old) is None and run_of(session, fresh) is not None
    assert operator_client.get(f"/admin/customers/import/mapping/{old}").status_code == 404


def test_the_status_answer_says_where_the_import_is(operator_client, session):
    token = previewed(operator_client, (HEADER + ROWS).encode())
    status = operator_client.get(f"/admin/customers/import/status/{token}.json").get_json()
    assert (status["status"], status["words"]) == ("previewed", "The preview is ready.")
    assert not status["done"]
    press(operator_client, "run", token)
    status = operator_client.get(f"/admin/customers/import/status/{token}.json").get_json()
    assert status == {"status": "done", "words": "Import finished.", "done": True, "cancelling": False,
                      "progress": {"done": 2, "total": 2}, "message": "",
                      "counts": {"created": 2, "updated": 0, "unchanged": 0, "skipped": 0, "duplicates": 0,
                                 "rejected": 0}}


def test_an_upload_far_above_the_limit_is_refused_before_it_is_read(operator_client):
    response = upload(operator_client, b"x" * (13 * 1024 * 1024))
    assert response.status_code == 413 and "at most 5 MB" in response.get_data(as_text=True)
