"""The exclusion rule (built-in and service accounts, OUs, account names) and expired accounts,
without a server: the pure rules of services.directory.mapping."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from services.directory.mapping import (
    BUILT_IN,
    DEFAULT_ATTRIBUTE_MAP,
    MACHINE,
    SERVICE,
    Exclusion,
    account_keys,
    attribute_map,
    dn_parts,
    filetime,
    has_expired,
    key_attributes,
    map_entry,
    parse_account_patterns,
    parse_ous,
    requested_attributes,
)

MAPPING = attribute_map(None)
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
DN = "CN=Novák\\, Ján 0001,OU=Sales,OU=Staff,DC=cd,DC=test"


def user(**overrides):
    attributes = {"objectGUID": [uuid.uuid4().bytes_le], "sAMAccountName": ["u0001"], "givenName": ["Ján"],
                  "sn": ["Novák"], "objectClass": ["top", "person", "organizationalPerson", "user"],
                  "userAccountControl": ["66048"], "accountExpires": ["9223372036854775807"]}
    attributes.update(overrides)
    return attributes


def test_filetime_counts_100_ns_intervals_since_1601():
    assert filetime(datetime(1970, 1, 1, tzinfo=UTC)) == 116_444_736_000_000_000
    assert filetime(datetime(1970, 1, 1)) == 116_444_736_000_000_000  # naive: UTC


@pytest.mark.parametrize(("value", "expired"), [
    (["0"], False), (["9223372036854775807"], False), (None, False), ([], False), (["garbage"], False),
    ([str(filetime(NOW - timedelta(days=1)))], True), ([str(filetime(NOW))], True),
    ([str(filetime(NOW + timedelta(seconds=1)))], False),
])
def test_account_expires_in_the_past_is_expired_0_and_the_largest_value_never(value, expired):
    assert has_expired(value, NOW) is expired


def test_an_expired_account_maps_as_disabled_and_expired_in_both_passes():
    assert DEFAULT_ATTRIBUTE_MAP["account_expires"] == "accountExpires"
    past = user(accountExpires=[str(filetime(datetime(2025, 6, 30, tzinfo=UTC)))])
    person = map_entry(DN, past, MAPPING, now=NOW)
    assert person.disabled and person.expired
    assert account_keys(past, MAPPING)[1] is True  # the counting pass: counted as disabled too
    never = map_entry(DN, user(), MAPPING, now=NOW)
    assert not never.disabled and not never.expired
    disabled = map_entry(DN, user(userAccountControl=["66050"]), MAPPING, now=NOW)
    assert disabled.disabled and not disabled.expired


def test_both_passes_read_what_the_rule_and_the_expiry_need():
    for attributes in (key_attributes(MAPPING), requested_attributes(MAPPING)):
        assert {"objectClass", "isCriticalSystemObject", "servicePrincipalName", "accountExpires",
                "sAMAccountName", "objectGUID", "userAccountControl"} <= set(attributes)


@pytest.mark.parametrize(("dn", "overrides", "reason"), [
    ("CN=Administrator,CN=Users,DC=cd,DC=test",
     {"sAMAccountName": ["Administrator"], "isCriticalSystemObject": ["TRUE"]}, BUILT_IN),
    ("CN=krbtgt,CN=Users,DC=cd,DC=test", {"sAMAccountName": ["krbtgt"], "isCriticalSystemObject": "TRUE"},
     BUILT_IN),
    ("CN=WS001,OU=Workstations,DC=cd,DC=test",
     {"sAMAccountName": ["ws001$"], "objectClass": ["top", "person", "organizationalPerson", "user",
                                                     "computer"]}, "computer account"),
    ("CN=gmsa,CN=Managed Service Accounts,DC=cd,DC=test",
     {"sAMAccountName": ["gmsa$"], "objectClass": ["top", "user", "computer",
                                                   "msDS-GroupManagedServiceAccount"]},
     "group managed service account"),
    ("CN=msa,CN=Managed Service Accounts,DC=cd,DC=test",
     {"sAMAccountName": ["msa$"], "objectClass": ["msDS-ManagedServiceAccount"]}, "managed service account"),
    ("CN=Old,OU=Staff,DC=cd,DC=test", {"sAMAccountName": ["old$"]}, MACHINE),
    ("CN=SQL Service,OU=Service Accounts,DC=cd,DC=test",
     {"sAMAccountName": ["svc-sql"], "servicePrincipalName": ["MSSQLSvc/sql1.cd.test:1433"]}, SERVICE),
])
def test_built_in_computer_and_service_accounts_are_left_out_by_default(dn, overrides, reason):
    assert Exclusion().reason(dn, user(**overrides), MAPPING) == reason
    assert Exclusion(system_accounts=False).reason(dn, user(**overrides), MAPPING) is None


def test_people_are_not_left_out():
    for attributes in (user(), user(isCriticalSystemObject=["FALSE"]), user(servicePrincipalName=[]),
                       user(userAccountControl=["514"])):
        assert Exclusion().reason(DN, attributes, MAPPING) is None


def test_ou_lines_match_whole_dn_parts_however_written():
    rule = Exclusion.of(False, "ou=staff , ou=sales\n", None)  # case, spaces: still the same OUs
    assert rule.ous == ("ou=staff , ou=sales",)
    assert rule.reason(DN, user(), MAPPING) is None  # Staff is above Sales, not below it
    sales = Exclusion.of(False, "OU=Sales,OU=Staff", None)
    assert sales.reason(DN, user(), MAPPING) == "in OU=Sales,OU=Staff"
    assert Exclusion.of(False, "OU=Staff,DC=cd,DC=test", None).reason(DN, user(), MAPPING) is not None
    assert Exclusion.of(False, "OU=Sal", None).reason(DN, user(), MAPPING) is None  # a whole value only
    # An escaped comma and a UTF-8 escape are the characters they stand for.
    assert dn_parts("CN=Nov\\C3\\A1k\\, J\\C3\\A1n 0001,OU=Sales") == \
        dn_parts("cn=NOVÁK\\, Ján 0001, ou=sales")
    assert Exclusion.of(False, "CN=Novák\\2C Ján 0001", None).reason(DN, user(), MAPPING) is not None
    assert Exclusion.of(False, "CN=Novák", None).reason(DN, user(), MAPPING) is None


def test_account_name_patterns_with_wildcards_ignore_case():
    rule = Exclusion.of(False, None, "svc-*\nadm?n")
    assert rule.reason(DN, user(sAMAccountName=["SVC-Backup"]), MAPPING) == "account name matches svc-*"
    assert rule.reason(DN, user(sAMAccountName=["admin"]), MAPPING) == "account name matches adm?n"
    assert rule.reason(DN, user(sAMAccountName=["u0001"]), MAPPING) is None
    assert rule.reason(DN, user(sAMAccountName=["svc"]), MAPPING) is None


def test_the_settings_say_which_line_is_wrong():
    assert parse_ous("\n# comment\n OU=Service Accounts \n") == ["OU=Service Accounts"]
    with pytest.raises(ValueError, match="Line 2: write an OU or part of a DN"):
        parse_ous("OU=Service Accounts\nService Accounts")
    assert parse_account_patterns(" svc-* \n\nadmin") == ["svc-*", "admin"]
    with pytest.raises(ValueError, match="Line 1: write an account name"):
        parse_account_patterns("OU=Service Accounts")
    assert Exclusion.of(None, None, None) == Exclusion()  # a source saved before the rule: on
