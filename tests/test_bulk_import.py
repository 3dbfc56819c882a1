"""Bulk import of customers: reading files, mapping, match rules, preview = import, the pages."""

from __future__ import annotations

import io
import re
import time

import pytest
from openpyxl import Workbook
from sqlalchemy import func, select

from models import Contact, Customer
from models.enums import CustomerKind
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


# -- the pages --------------------------------------------------------------------------------

@pytest.fixture
def import_dir(app, tmp_path):
    app.config["BULK_IMPORT_DIR"] = str(tmp_path / "bulk_import")
    return tmp_path / "bulk_import"


def upload(browser, data: bytes, name="zakaznici.csv", encoding="auto"):
    return browser.submit("/admin/customers/import/", {"file": (io.BytesIO(data), name),
                                                       "encoding": encoding},
                          content_type="multipart/form-data")


def wait_until_done(browser, result_url: str) -> dict:
    for _ in range(200):
        status = browser.get(result_url.replace("/result/", "/status/") + ".json").get_json()
        if status["done"]:
            return status
        time.sleep(0.05)
    raise AssertionError("the import did not end")


def test_pages_upload_map_preview_import_and_download(operator_client, session, import_dir):
    answer = upload(operator_client, (HEADER + ROWS + "Zlá firma;99999999;zle;;;;\n").encode("cp1250"))
    assert answer.status_code == 302
    mapping_url = answer.headers["Location"]
    page = operator_client.get(mapping_url).get_data(as_text=True)
    assert "Názov firmy" in page and 'value="company_name" selected' in page
    fields = dict(re.findall(r'<select[^>]*name="(map-\d+)"[^>]*>.*?value="([a-z_]*)" selected', page, re.S))
    answer = operator_client.submit(mapping_url, {**fields, "rule": ["registration_number", "email"],
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
    assert "Created" in page and "download-rejected" in page
    rejected = operator_client.get(result_url.replace("/result/", "/rejected/") + ".csv")
    lines = rejected.get_data().decode("utf-8-sig").splitlines()
    assert lines[0].endswith(";Reason") and lines[1].startswith("Zlá firma;99999999;zle;")
    assert "E-mail:" in lines[1]
    session.expire_all()
    assert count(session) == 2


def test_pages_refuse_bad_files_with_a_message(operator_client, import_dir):
    answer = upload(operator_client, b"\x00\x01binary")
    assert answer.status_code == 400
    assert "neither a CSV nor an XLSX" in answer.get_data(as_text=True)
    page = operator_client.submit("/admin/customers/import/", {"encoding": "auto"})
    assert page.status_code == 400 and "Choose a file" in page.get_data(as_text=True)


def test_another_operator_cannot_open_my_upload(operator_client, maintainer_client, import_dir):
    answer = upload(operator_client, (HEADER + ROWS).encode())
    assert maintainer_client.get(answer.headers["Location"]).status_code == 404


def test_an_upload_far_above_the_limit_is_refused_before_it_is_read(operator_client):
    response = upload(operator_client, b"x" * (13 * 1024 * 1024))
    assert response.status_code == 413 and "at most 5 MB" in response.get_data(as_text=True)
