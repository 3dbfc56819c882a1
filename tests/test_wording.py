"""The users' words: labels, values and change lines as a person reads them (services.wording)."""

from datetime import datetime

import pytest

from services.wording import (
    EMPTY,
    ChangeLine,
    action_name,
    change_lines,
    entity_name,
    field_label,
    shown_value,
)


@pytest.fixture
def words(app):
    with app.test_request_context():
        yield


def test_fields_read_as_the_forms_call_them(words):
    assert field_label("customer", "primary_phone") == "Primary phone"
    assert field_label("customer", "registration_number") == "Company ID (IČO)"
    assert field_label("customer", "operators") == "Responsible operators"
    assert field_label("customersettings", "smtp_primary_host") == "Primary SMTP: host"
    assert field_label("customer_settings", "cmonitor_password_encrypted") == "C-Monitor access password"
    assert field_label("directorysource", "base_dn") == "Base DN"
    assert field_label("contact", "is_main") == "Main contact"
    assert field_label("portalaccount", "username") == "User name"
    assert field_label("whatever", "some_new_field") == "Some new field"


def test_values_read_as_a_person_writes_them(words):
    assert shown_value("customer", "primary_phone", "+421903123456") == "+421 903 123 456"
    assert shown_value("customer", "kind", "company") == "Company"
    assert shown_value("customer", "employee_type", "full_time") == "Full-Time"
    assert shown_value("request", "status", "resolved") == "Completed"
    assert shown_value("request", "status", "Completed") == "Completed"  # older events: the label
    assert shown_value("customersettings", "smtp_primary_security", "starttls") == "STARTTLS"
    assert shown_value("customersettings", "requests_by_email_enabled", True) == "Yes"
    assert shown_value("customersettings", "requests_by_email_enabled", False) == "No"
    assert shown_value("customer", "operators", ["Jana Operátorová", "Olga Operator"]) == (
        "Jana Operátorová, Olga Operator")
    assert shown_value("customer", "operators", []) == EMPTY
    assert shown_value("customer", "email", None) == EMPTY
    assert shown_value("customer", "email", "") == EMPTY
    assert shown_value("customersettings", "pop3_password_encrypted", "changed") == "changed"
    assert shown_value("operator", "password_hash", "$2b$something") == "changed"
    assert shown_value("customer", "title", "2024-01-05") == "2024-01-05"  # not a date field


def test_times_are_shown_to_the_minute_in_the_readers_zone(words):
    # Stored UTC; the desk's zone (Europe/Bratislava) is UTC+2 in summer.
    assert shown_value("customer", "merged_at", "2024-07-01T10:20:30.123456") == "Jul 1, 2024 12:20"
    assert shown_value("customer", "merged_at", "2024-07-01T10:20:30+00:00") == "Jul 1, 2024 12:20"
    assert shown_value("customer", "merged_at", datetime(2024, 1, 1, 23, 5)) == "Jan 2, 2024 00:05"
    assert shown_value("request", "rated_at", "2024-01-05") == "Jan 5, 2024"


def test_an_events_changes_become_labelled_lines(words):
    lines = change_lines("customer", {
        "primary_phone": [None, "+421903123456"],
        "operators": [[], ["Jana Operátorová", "Olga Operator"]],
        "kind": ["person", "company"],
    })
    assert lines == [
        ChangeLine("Primary phone", EMPTY, "+421 903 123 456"),
        ChangeLine("Responsible operators", EMPTY, "Jana Operátorová, Olga Operator"),
        ChangeLine("Kind", "Person", "Company"),
    ]
    secret = change_lines("customersettings", {"cmonitor_password_encrypted": ["changed", "changed"]})
    assert secret == [ChangeLine("C-Monitor access password", "changed", "changed")]


def test_any_stored_event_reads_without_an_error(words):
    merge = change_lines("customer", {"merged": ["Nová, Jana", "Nová, Jana"],
                                      "undo": {"fields": {"email": "x"}, "moved": {"contacts": [1]}}})
    assert merge == [ChangeLine("Merged", "Nová, Jana", "Nová, Jana")]
    deleted = change_lines("customer", {"deleted_with": [None, {"contacts": 2, "settings": 1}]})
    assert deleted == [ChangeLine("Deleted with", EMPTY, "Contacts: 2, Customer settings: 1")]
    odd = change_lines("customer", {"notes": "just text", "three": [1, 2, 3], "nested": {"a": [1]}})
    assert [line.is_summary for line in odd] == [True, True, True]
    assert odd[0].new == "just text" and odd[1].new == "1, 2, 3"
    assert change_lines("customer", None) == [] and change_lines("customer", ["odd"])[0].new == "odd"


def test_record_types_and_actions_in_words(words):
    assert entity_name("customersettings") == "Customer settings"
    assert entity_name("portalaccount") == "Portal account"
    assert action_name("status_change") == "Status changed"
    assert action_name("operator_assignment") == "Responsible operators changed"
    assert action_name("something_new") == "Something new"


def test_only_times_are_shown_as_times_and_text_as_typed(words):
    assert shown_value("customer", "notes", "2024-05-01 10:00") == "2024-05-01 10:00"
    assert shown_value("customer", "title", "2024-07-01T10:20:30") == "2024-07-01T10:20:30"
    assert shown_value("customer", "notes", "9999-12-31T23:59:59") == "9999-12-31T23:59:59"
    assert shown_value("whatever", "closed_at", "2024-07-01T10:20:30") == "Jul 1, 2024 12:20"  # by name
    # A time at the edge of the calendar is shown, not shifted past it.
    assert "9999" in shown_value("customer", "merged_at", "9999-12-31T23:59:59")
    assert shown_value("customer", "merged_at", "0001-01-01T00:00:00+14:00") == "0001-01-01T00:00:00+14:00"
    assert "9999" in shown_value("customer", "merged_at", datetime(9999, 12, 31, 23, 59))


def test_ciphertext_is_masked_where_it_is_read_whatever_field_an_event_stored_it_under(words):
    token = "gAAAAA" + "y" * 80
    assert shown_value("customersettings", "cmonitor", token) == "changed"
    assert shown_value("customer", "notes", f"Key {token}") == "Key changed"
    assert "pop3-secret" not in shown_value("customer", "settings", {"pop3_password": "pop3-secret"})
    assert change_lines("customer", {"notes": [None, token]}) == [ChangeLine("Notes", EMPTY, "changed")]
