"""services.outbound_policy: where a Test connection may connect. Domain tests: no app, no
database, no connection; literal addresses resolve without DNS, and a resolver given as a
function stands for a DNS answer (a name that answers with several addresses)."""

from __future__ import annotations

import pytest

from models import Operator
from models.enums import OperatorRole
from services.outbound_policy import (
    OutboundRefused,
    Outcome,
    Protocol,
    Reach,
    allowed_destination,
    reach_of,
)

LOCAL = ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1", "0.0.0.0", "0.1.2.3", "::", "169.254.0.1",
         "169.254.169.254", "fe80::1", "fe80::1%1", "224.0.0.251", "ff02::1", "255.255.255.255", "240.0.0.1"]
ORDINARY = ["10.1.2.3", "172.16.0.5", "192.168.1.10", "192.0.2.10", "8.8.8.8", "fd12:3456::1",
            "2001:db8::25", "100.64.0.1"]


def refusal(*args, **kwargs) -> OutboundRefused:
    with pytest.raises(OutboundRefused) as caught:
        allowed_destination(*args, **kwargs)
    return caught.value


@pytest.mark.parametrize("address", LOCAL)
def test_an_operator_never_reaches_a_local_address(address):
    refused = refusal(address, 25, Protocol.SMTP, Reach.LIMITED)
    assert refused.outcome == Outcome.NOT_ALLOWED and refused.field == "host"
    assert "is a local address" in refused.message and "Ask a maintainer" in refused.message


@pytest.mark.parametrize("address", ORDINARY)
def test_private_and_public_addresses_are_ordinary(address):
    """Customers' mail servers live in private networks too: only the machine's own are refused."""
    destination = allowed_destination(address, 587, Protocol.SMTP, Reach.LIMITED)
    assert destination.port == 587 and len(destination.addresses) == 1


@pytest.mark.parametrize(("protocol", "allowed"), [
    (Protocol.SMTP, [25, 465, 587, 2525]), (Protocol.POP3, [110, 995]),
    (Protocol.LDAP, [389, 636, 3268, 3269])])
def test_an_operator_reaches_only_the_protocols_ports(protocol, allowed):
    for port in allowed:
        assert allowed_destination("192.0.2.10", port, protocol, Reach.LIMITED).port == port
    for port in (21, 22, 23, 80, 143, 443, 993, 3306, 5432, 6379, 8080, 9200, 11211, 27017, 1, 65535):
        if port not in allowed:
            refused = refusal("192.0.2.10", port, protocol, Reach.LIMITED)
            assert refused.outcome == Outcome.NOT_ALLOWED and refused.field == "port"


def test_a_maintainer_reaches_their_own_servers_but_never_the_metadata_service():
    assert allowed_destination("127.0.0.1", 2525, Protocol.SMTP, Reach.ANY).addresses == ("127.0.0.1",)
    assert allowed_destination("[::1]", 10389, Protocol.LDAP, Reach.ANY).host == "::1"
    for metadata in ("169.254.169.254", "fd00:ec2::254", "::ffff:169.254.169.254", "100.100.100.200"):
        assert refusal(metadata, 25, Protocol.SMTP, Reach.ANY).outcome == Outcome.NOT_ALLOWED


# IPv6 addresses carrying a local IPv4 address: IPv4-compatible, IPv4-translated, NAT64 (well-known
# and local-use prefixes), 6to4 and Teredo (client 127.0.0.1, obfuscated as 80ff:fffe).
CARRYING_LOCAL = ["::127.0.0.1", "::7f00:1", "64:ff9b::7f00:1", "::ffff:0:7f00:1", "2002:7f00:1::1",
                  "[2002:a9fe:a9fe::1]", "64:ff9b::a9fe:1", "64:ff9b:1::7f00:1", "64:ff9b:1:7f00:1::",
                  "2001:0:4136:e378:8000:63bf:80ff:fffe", "2001:0:7f00:1::1", "::0.0.0.0"]
CARRYING_ORDINARY = ["64:ff9b::c000:20a", "2002:c000:20a::25", "2001:0:4136:e378:8000:63bf:3fff:f5f5"]


@pytest.mark.parametrize("address", CARRYING_LOCAL)
def test_an_ipv6_address_carrying_a_local_ipv4_address_is_local(address):
    """What a NAT64 gateway, a 6to4 relay or a Teredo tunnel would deliver to the machine itself
    (or a dual-stack socket to its loopback) is checked as the IPv4 address it carries."""
    refused = refusal(address, 25, Protocol.SMTP, Reach.LIMITED)
    assert refused.outcome == Outcome.NOT_ALLOWED and refused.field == "host"


@pytest.mark.parametrize("address", CARRYING_ORDINARY)
def test_an_ipv6_address_carrying_an_ordinary_ipv4_address_is_ordinary(address):
    assert allowed_destination(address, 25, Protocol.SMTP, Reach.LIMITED).addresses == (address.strip("[]"),)


def test_the_metadata_service_carried_in_ipv6_is_refused_to_a_maintainer_too():
    for address in ("64:ff9b::a9fe:a9fe", "::169.254.169.254", "2002:a9fe:a9fe::1", "::ffff:0:a9fe:a9fe"):
        assert refusal(address, 25, Protocol.SMTP, Reach.ANY).outcome == Outcome.NOT_ALLOWED
    assert allowed_destination("64:ff9b::7f00:1", 2525, Protocol.SMTP, Reach.ANY).port == 2525


def test_every_address_of_a_name_is_checked():
    """A name answering a public and a loopback address (the DNS rebinding trick) is refused."""
    def two(host, port):
        return ["192.0.2.10", "127.0.0.1"]

    assert refusal("mail.example.com", 25, Protocol.SMTP, Reach.LIMITED, resolver=two).field == "host"
    ordinary = allowed_destination("mail.example.com", 25, Protocol.SMTP, Reach.LIMITED,
                                   resolver=lambda host, port: ["192.0.2.10", "2001:db8::25"])
    assert ordinary.addresses == ("192.0.2.10", "2001:db8::25") and ordinary.host == "mail.example.com"


def test_a_name_that_does_not_resolve():
    for host in ("no-such-host.invalid", "a" * 300, "bad..name", "\u202ex"):
        refused = refusal(host, 25, Protocol.SMTP, Reach.LIMITED)
        assert refused.outcome == Outcome.HOST_NOT_FOUND and refused.field == "host"


def test_the_reach_of_each_role():
    assert reach_of(Operator(role=OperatorRole.OPERATOR)) == Reach.LIMITED
    assert reach_of(Operator(role=OperatorRole.MAINTAINER)) == Reach.ANY
    assert reach_of(None) == Reach.ANY  # the command line: the machine's own administrator
