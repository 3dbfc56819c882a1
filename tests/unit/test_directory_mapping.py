"""Directory entries to people, without a server: AD defaults, multi-valued attributes,
objectGUID bytes, disabled accounts, refused entries, company rules and the mapping text."""

from __future__ import annotations

import uuid

import pytest

from services.directory.adapter import account_filter, changed_since
from services.directory.mapping import (
    DEFAULT_ATTRIBUTE_MAP,
    EntryRefused,
    attribute_map,
    company_for,
    map_entry,
    parse_rules,
)
from services.directory.sources import parse_mapping

GUID = uuid.UUID("12345678-1234-5678-9abc-def012345678")
DN = "CN=Jana Nová,OU=Sales,OU=Staff,DC=example,DC=test"


def entry(**overrides):
    attributes = {"objectGUID": [GUID.bytes_le], "sAMAccountName": ["jnova"], "givenName": ["Jana"],
                  "sn": ["Nová"], "initials": ["K"], "mail": ["jana.nova@example.test"],
                  "telephoneNumber": ["+421 2 5010 1234"], "mobile": ["0903 123 456"],
                  "department": ["Sales"], "title": ["Manager"],
                  "manager": ["CN=Boss,OU=Staff,DC=example,DC=test"],
                  "physicalDeliveryOfficeName": ["Bratislava HQ"], "userAccountControl": ["512"],
                  "uSNChanged": ["4711"]}
    attributes.update(overrides)
    return attributes


def test_an_ad_entry_maps_to_a_person_with_the_default_mapping():
    person = map_entry(DN, entry(), attribute_map(None))
    assert person.guid == str(GUID)  # bytes_le read back as AD writes it
    assert (person.sam, person.first_name, person.middle_name, person.last_name) == \
        ("jnova", "Jana", "K", "Nová")
    assert (person.email, person.primary_phone, person.secondary_phone) == (
        "jana.nova@example.test", "+421 2 5010 1234", "0903 123 456")
    assert (person.department, person.title, person.office) == ("Sales", "Manager", "Bratislava HQ")
    assert person.manager_dn == "CN=Boss,OU=Staff,DC=example,DC=test"
    assert (person.ou, person.disabled, person.usn) == ("Sales", False, 4711)


def test_single_values_as_ad_sends_them_and_attribute_case_do_not_matter():
    person = map_entry(DN, {k.lower(): (v[0] if isinstance(v, list) else v) for k, v in entry().items()},
                       attribute_map(None))
    assert person.first_name == "Jana" and person.guid == str(GUID)


def test_account_disabled_bit():
    assert map_entry(DN, entry(userAccountControl=["514"]), attribute_map(None)).disabled
    assert not map_entry(DN, entry(userAccountControl=["66048"]), attribute_map(None)).disabled


@pytest.mark.parametrize(("overrides", "reason"), [
    ({"sn": []}, "no last name"),
    ({"givenName": ["  "]}, "no first name"),
    ({"objectGUID": []}, "no objectGUID"),
])
def test_entries_without_required_values_are_refused_with_the_reason(overrides, reason):
    with pytest.raises(EntryRefused, match=reason):
        map_entry(DN, entry(**overrides), attribute_map(None))


def test_a_custom_mapping_overrides_the_defaults_and_unknown_fields_are_refused():
    mapping = attribute_map({"email": "userPrincipalName"})
    person = map_entry(DN, entry(userPrincipalName=["jnova@corp.test"]), mapping)
    assert person.email == "jnova@corp.test" and mapping["first_name"] == "givenName"
    with pytest.raises(ValueError, match="Unknown field"):
        attribute_map({"favourite_colour": "x"})


def test_mapping_text_keeps_only_overrides_and_names_bad_lines():
    text = "\n".join(f"{k} = {v}" for k, v in DEFAULT_ATTRIBUTE_MAP.items()).replace(
        "email = mail", "email = userPrincipalName")
    assert parse_mapping(text) == {"email": "userPrincipalName"}
    with pytest.raises(ValueError, match="Line 1"):
        parse_mapping("email userPrincipalName")
    with pytest.raises(ValueError, match="not a field"):
        parse_mapping("shoe_size = x")


def test_company_rules_first_match_wins_and_unmatched_is_none():
    rules = parse_rules("# contractors first\nou = Contractors -> 7\n"
                        "department = sales -> 3\ncompany = ACME -> 9")
    person = map_entry(DN, entry(company=["ACME"]), attribute_map(None))
    assert company_for(person, rules) == 3  # department Sales (case-insensitive) before company ACME
    other = map_entry("CN=X,OU=Elsewhere,DC=example,DC=test", entry(department=["IT"]), attribute_map(None))
    assert company_for(other, rules) is None
    with pytest.raises(ValueError, match="Line 1"):
        parse_rules("title = Boss -> 3")


def test_filters_escape_typed_values_and_add_the_change_counter():
    assert account_filter("(objectClass=user)", "a*)(uid=*") == \
        r"(&(objectClass=user)(sAMAccountName=a\2a\29\28uid=\2a))"
    assert changed_since("(objectClass=user)", 4711) == "(&(objectClass=user)(uSNChanged>=4712))"
    assert changed_since("(objectClass=user)", None) == "(objectClass=user)"
