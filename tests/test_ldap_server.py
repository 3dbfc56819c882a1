"""The AD-shaped OpenLDAP harness itself (testing/ldap_server.py, tests/ldap_fixtures.py), seen
through ldap3 as the directory sync sees it: TLS both ways with the certificate checked, refused
passwords, AD's 1,000-entry limit without paging, AD's attribute formats, the online helpers.
"""

from __future__ import annotations

import socket
import ssl
import uuid

import ldap3
import pytest
from ldap3.core.exceptions import LDAPInvalidCredentialsResult, LDAPSocketOpenError

from testing.ldap_server import LdapServer, LdapUnavailable
from tests.conftest import unavailable

USERS = "(objectClass=user)"


def verified_tls(server: LdapServer) -> ldap3.Tls:
    return ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=server.ca_file,
                     version=ssl.PROTOCOL_TLS_CLIENT)


def test_admin_binds_over_starttls_with_the_certificate_checked(ldap_server):
    server = ldap3.Server(ldap_server.url, tls=verified_tls(ldap_server), connect_timeout=5)
    conn = ldap3.Connection(server, ldap_server.admin_dn, ldap_server.admin_password, raise_exceptions=True)
    conn.open()
    conn.start_tls()
    conn.bind()
    try:
        assert conn.tls_started
        assert conn.extend.standard.who_am_i() == f"dn:{ldap_server.admin_dn}"
    finally:
        conn.unbind()


def test_admin_binds_over_ldaps_with_the_certificate_checked(ldap_server):
    server = ldap3.Server(ldap_server.ldaps_url, use_ssl=True, tls=verified_tls(ldap_server),
                          connect_timeout=5)
    conn = ldap3.Connection(server, ldap_server.admin_dn, ldap_server.admin_password, raise_exceptions=True)
    conn.bind()
    try:
        assert conn.extend.standard.who_am_i() == f"dn:{ldap_server.admin_dn}"
    finally:
        conn.unbind()


def test_the_certificate_is_not_trusted_without_its_ca_file(ldap_server):
    tls = ldap3.Tls(validate=ssl.CERT_REQUIRED, version=ssl.PROTOCOL_TLS_CLIENT)
    server = ldap3.Server(ldap_server.ldaps_url, use_ssl=True, tls=tls, connect_timeout=5)
    conn = ldap3.Connection(server, ldap_server.admin_dn, ldap_server.admin_password, raise_exceptions=True)
    with pytest.raises(LDAPSocketOpenError, match="CERTIFICATE_VERIFY_FAILED"):
        conn.bind()
    conn.unbind()


def test_a_wrong_password_is_refused(ldap_server):
    server = ldap3.Server(ldap_server.url, connect_timeout=5)
    conn = ldap3.Connection(server, ldap_server.admin_dn, "not-the-password", raise_exceptions=True)
    with pytest.raises(LDAPInvalidCredentialsResult):
        conn.bind()
    assert conn.result["description"] == "invalidCredentials"
    conn.unbind()


def test_a_user_binds_with_the_password_set_for_it(ldap_server):
    dn = ldap_server.add_user("pnovak", given="Peter", sn="Novák", password="pw-of-peter")
    conn = ldap_server.connect(dn, "pw-of-peter", mode="starttls")
    try:
        assert conn.extend.standard.who_am_i() == f"dn:{dn}"
    finally:
        conn.unbind()
    with pytest.raises(LDAPInvalidCredentialsResult):
        ldap_server.connect(dn, "wrong", mode="plain")


def paged_in_server_order(conn: ldap3.Connection, base_dn: str, attributes: list[str]) -> list[dict]:
    """Page by hand: ldap3's paged_search generator yields each page backwards."""
    entries, cookie = [], None
    while True:
        conn.search(base_dn, USERS, attributes=attributes, paged_size=500, paged_cookie=cookie)
        entries += [e for e in conn.response if e["type"] == "searchResEntry"]
        cookie = conn.result["controls"]["1.2.840.113556.1.4.319"]["value"]["cookie"]
        if not cookie:
            return entries


def test_paging_lists_everyone_and_a_plain_search_stops_at_1000(big_directory):
    server = big_directory.server
    conn = server.connect(server.service_dn, server.service_password)
    try:
        found = [e["attributes"]["sAMAccountName"] for e in conn.extend.standard.paged_search(
            server.base_dn, USERS, attributes=["sAMAccountName"], paged_size=500, generator=True)
            if e["type"] == "searchResEntry"]
        # The generator does not raise when the server stops early: only the result says so.
        assert conn.result["description"] == "success"
        assert sorted(found) == big_directory.sams and len(found) == 2100

        conn.search(server.base_dn, USERS, attributes=["sAMAccountName"])
        assert conn.result["description"] == "sizeLimitExceeded"
        assert len(conn.response) == 1000
    finally:
        conn.unbind()


def test_the_admin_is_not_limited(big_directory):
    server = big_directory.server
    conn = server.connect(server.admin_dn, server.admin_password)
    try:
        conn.search(server.base_dn, USERS, attributes=["sAMAccountName"])
        assert conn.result["description"] == "success" and len(conn.response) == 2100
    finally:
        conn.unbind()


def test_managers_are_listed_after_their_reports(big_directory):
    server = big_directory.server
    conn = server.connect(server.service_dn, server.service_password, mode="plain")
    try:
        entries = paged_in_server_order(conn, server.base_dn, ["sAMAccountName", "manager"])
    finally:
        conn.unbind()
    order = [e["attributes"]["sAMAccountName"] for e in entries]
    assert order == big_directory.sams
    position = {sam: index for index, sam in enumerate(order)}
    sam_of = {dn.lower(): sam for sam, dn in big_directory.dns.items()}
    for entry in entries:
        sam, managers = entry["attributes"]["sAMAccountName"], entry["attributes"]["manager"]
        expected = big_directory.managers[sam]
        assert [sam_of[m.lower()] for m in managers] == ([expected] if expected else [])
        if expected:
            assert position[expected] > position[sam]
    assert big_directory.managers[big_directory.head_sam] is None


def test_ad_attributes_come_back_in_ads_formats(big_directory):
    server = big_directory.server
    conn = server.connect(server.service_dn, server.service_password)
    try:
        conn.search(server.base_dn, "(|(sAMAccountName=u0005)(sAMAccountName=u0007)(sAMAccountName=u0042))",
                    attributes=["*"])
        found = {e["attributes"]["sAMAccountName"]: e for e in conn.response}
        conn.search(server.base_dn, "(&(objectClass=user)(uSNChanged>=2001))", attributes=["uSNChanged"])
        assert len(conn.response) == 100  # an incremental run: integer ordering works
    finally:
        conn.unbind()
    user = found["u0042"]
    raw_guid = user["raw_attributes"]["objectGUID"][0]
    assert len(raw_guid) == 16
    assert uuid.UUID(bytes_le=raw_guid) == big_directory.guids["u0042"]
    assert user["attributes"]["userAccountControl"] == 512
    assert user["attributes"]["uSNChanged"] == 42
    assert user["attributes"]["userPrincipalName"] == "u0042@example.test"
    assert user["attributes"]["mail"] == ["u0042@example.com"]  # standard attributes: lists
    assert found[big_directory.disabled_sam]["attributes"]["userAccountControl"] == 514
    assert found[big_directory.non_ascii_sam]["attributes"]["givenName"] == ["Ľubica"]
    assert found[big_directory.non_ascii_sam]["dn"] == big_directory.dns[big_directory.non_ascii_sam]


def test_online_changes_move_usn_on_and_keep_the_guid(ldap_server):
    dn = ldap_server.add_user("jdoe", given="Jana", sn="Doe", mail="jana@example.test",
                              manager_dn=f"cn=Nobody Yet,ou=Staff,{ldap_server.base_dn}")
    added_usn = ldap_server.highest_usn
    ldap_server.modify(dn, {"mail": None, "title": "Buyer", "mobile": ["+421 900 000 001"]})
    moved = ldap_server.move(dn, "Contractors")
    conn = ldap_server.connect(ldap_server.admin_dn, ldap_server.admin_password, mode="plain")
    try:
        conn.search(ldap_server.base_dn, "(sAMAccountName=jdoe)", attributes=["*"])
        (entry,) = conn.response
        attributes = entry["attributes"]
        assert entry["dn"] == moved == f"cn=Jana Doe,ou=Contractors,{ldap_server.base_dn}"
        assert "mail" not in attributes and attributes["title"] == ["Buyer"]
        assert attributes["uSNChanged"] == ldap_server.highest_usn == added_usn + 2
        guid = uuid.UUID(bytes_le=entry["raw_attributes"]["objectGUID"][0])
        assert guid == uuid.uuid5(uuid.NAMESPACE_DNS, "jdoe")
        ldap_server.delete(moved)
        conn.search(ldap_server.base_dn, "(sAMAccountName=jdoe)")
        assert conn.response == []
    finally:
        conn.unbind()


def test_a_server_that_cannot_listen_says_why():
    try:
        server = LdapServer()
    except LdapUnavailable as exc:
        unavailable(f"LDAP: {exc}")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", server.port))
        taken.listen()
        with pytest.raises(LdapUnavailable, match=r"(?s)slapd exited \(1\).*Address already in use"):
            server.start()
