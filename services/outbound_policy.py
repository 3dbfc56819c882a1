"""Where a "Test connection" may connect, and the words its answer may use: one rule for every
door (the wizard's mail servers, a directory source's Test connection, `flask directory test`), so
the button cannot be turned into a port scanner for the networks the server sits in.

Who may reach what (`Reach`):
- An operator (`Reach.LIMITED`) reaches only the ports of the protocol being tested — SMTP 25, 465,
  587, 2525; POP3 110, 995; LDAP 389, 636 and the Global Catalog's 3268, 3269 — on hosts whose every
  address is an ordinary one: loopback, link-local (169.254.0.0/16, fe80::/10), unspecified ("this
  network", 0.0.0.0/8, ::), multicast, broadcast and reserved addresses are refused, and so are the
  cloud metadata addresses.
- A maintainer, and the command line (the machine's own administrator), get `Reach.ANY`: any host and
  port — "unless a maintainer allows it" is the maintainer doing the test. They configure the servers
  the application really connects to (built-in mail servers, directory URLs, which the import uses as
  saved), so their own servers on loopback or on a non-standard port are theirs to test. The cloud
  metadata addresses stay refused for everyone: no mail or directory server lives there.

The host name is resolved once (`resolve`), every address it resolves to is checked (one refused
address refuses the host: a DNS answer mixing a public and a loopback address is the rebinding
trick), and the caller connects to the checked addresses only (`Destination.addresses`) — the name
is kept for TLS alone (SNI, the certificate's name), so a DNS answer that changes between the check
and the connection never reaches an address that was not checked.

Answers come from a fixed set (`Outcome`): connected, refused, no answer, wrong password, untrusted
certificate, host not found, not allowed — sentences built from what the user typed, never from
what a server sent (a banner, an error text, a certificate). The per-operator rate limit belongs to
the doors (admin_views/connection_tests.py): it needs the application's limiter storage.

Plain Python, no Flask.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from models import Operator


class Reach(Enum):
    LIMITED = "limited"  # the protocol's ports on ordinary hosts
    ANY = "any"  # any host and port, except the cloud metadata addresses


class Protocol(Enum):
    SMTP = "SMTP"
    POP3 = "POP3"
    LDAP = "LDAP"

    @property
    def ports(self) -> tuple[int, ...]:
        return PORTS[self]

    @property
    def a_port(self) -> str:
        return f"{'a' if self == Protocol.POP3 else 'an'} {self.value} port"  # said letter by letter


PORTS = {Protocol.SMTP: (25, 465, 587, 2525), Protocol.POP3: (110, 995),
         Protocol.LDAP: (389, 636, 3268, 3269)}


class Outcome(Enum):
    CONNECTED = "connected"
    REFUSED = "refused"
    NO_ANSWER = "no_answer"
    WRONG_PASSWORD = "wrong_password"
    UNTRUSTED_CERTIFICATE = "untrusted_certificate"
    HOST_NOT_FOUND = "host_not_found"
    NOT_ALLOWED = "not_allowed"
    INVALID = "invalid"  # what was typed cannot be tried (no host, a port out of range)
    TOO_MANY = "too_many"  # the doors' rate limit


# Instance metadata services: credentials of the machine itself. Refused even for a maintainer.
METADATA_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254",  # AWS, Azure, GCP, OpenStack, DigitalOcean …
    "169.254.170.2",  # AWS ECS task metadata
    "fd00:ec2::254",  # AWS over IPv6
    "100.100.100.200",  # Alibaba Cloud
))
THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")  # Linux connects 0.0.0.0 to the machine itself

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Sequence[str]]


@dataclass(frozen=True)
class Destination:
    """A checked place to connect to: `host` as typed (for TLS only), `addresses` to connect to."""
    host: str
    port: int
    addresses: tuple[str, ...]


class OutboundRefused(Exception):
    """The destination may not be reached (NOT_ALLOWED) or its name does not resolve
    (HOST_NOT_FOUND). `field` is "host" or "port": the input the message belongs under."""

    def __init__(self, outcome: Outcome, message: str, field: str):
        super().__init__(message)
        self.outcome, self.message, self.field = outcome, message, field


def reach_of(actor: Operator | None) -> Reach:
    """The reach of the acting operator; None is the command line (the machine's administrator)."""
    return Reach.ANY if actor is None or actor.is_maintainer else Reach.LIMITED


def resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (a literal address is itself), in the resolver's order.
    Raises socket.gaierror (or UnicodeError for a name IDNA cannot encode)."""
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in found))


def allowed_destination(host: str, port: int, protocol: Protocol, reach: Reach,
                        resolver: Resolver = resolve) -> Destination:
    """The checked destination, or OutboundRefused saying which rule refused it."""
    host = host.strip().removeprefix("[").removesuffix("]")  # [v6] as in a URL
    if reach == Reach.LIMITED and port not in protocol.ports:
        raise OutboundRefused(Outcome.NOT_ALLOWED, (
            f"Port {port} is not {protocol.a_port}: Test connection tries only "
            f"{_listed(protocol.ports)}. Ask a maintainer to test a server on another port."), "port")
    try:
        addresses = list(resolver(host, port))
    except (OSError, UnicodeError, ValueError):
        addresses = []
    if not addresses:
        raise OutboundRefused(Outcome.HOST_NOT_FOUND, f"The host name {host} could not be resolved.", "host")
    for text in addresses:
        address = _address(text)
        if address is None or _refused(address, reach):
            raise OutboundRefused(Outcome.NOT_ALLOWED, (
                f"{host} is a local address (loopback, link-local or similar), which Test connection does "
                "not reach. Ask a maintainer to test a server there."), "host")
    return Destination(host, port, tuple(addresses))


def _address(text: str) -> Address | None:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        address = address.ipv4_mapped or address  # ::ffff:127.0.0.1 is 127.0.0.1
        if isinstance(address, ipaddress.IPv6Address) and address.scope_id:
            address = ipaddress.IPv6Address(str(address).split("%", 1)[0])
    return address


# IPv6 addresses that carry an IPv4 address and can be routed to it (RFC 4291, 6052, 8215, 3056,
# 4380): ::a.b.c.d (IPv4-compatible), ::ffff:0:a.b.c.d (IPv4-translated), NAT64 64:ff9b::/96, 6to4
# 2002::/16 and Teredo 2001::/32 are checked as the IPv4 address they carry (IPv4-mapped
# ::ffff:a.b.c.d is unwrapped by `_address`). The local-use NAT64 prefix 64:ff9b:1::/48 may carry
# it at several places (its prefix length is the network's choice): an operator's test refuses it.
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
IPV4_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")
NAT64 = ipaddress.ip_network("64:ff9b::/96")
LOCAL_NAT64 = ipaddress.ip_network("64:ff9b:1::/48")


def _carried_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries (and can reach through a translator)."""
    if any(address in network for network in (IPV4_COMPATIBLE, IPV4_TRANSLATED, NAT64)):
        return [ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)]
    if address.sixtofour is not None:
        return [address.sixtofour]
    if address.teredo is not None:
        return list(address.teredo)  # the server and the client (its obfuscation undone)
    return []


def _refused(address: Address, reach: Reach) -> bool:
    """The metadata addresses for everyone, local ones for an operator — an IPv6 address also
    when the IPv4 address it carries is one of them."""
    carried = _carried_ipv4(address) if isinstance(address, ipaddress.IPv6Address) else []
    if address in METADATA_ADDRESSES or any(v4 in METADATA_ADDRESSES for v4 in carried):
        return True
    if reach == Reach.ANY:
        return False
    return _local(address) or any(map(_local, carried)) or address in LOCAL_NAT64


def _local(address: Address) -> bool:
    """Addresses an operator's test never reaches: the machine itself, its link, and what is no
    single host at all. Private networks (10/8, 192.168/16, fc00::/7) are allowed: customers'
    mail servers live there."""
    if address.is_loopback or address.is_link_local or address.is_unspecified or address.is_multicast:
        return True
    if isinstance(address, ipaddress.IPv4Address):
        return address in THIS_NETWORK or address.is_reserved  # 240/4 with 255.255.255.255
    return address.is_site_local  # fec0::/10, deprecated link-like scope


def _listed(ports: Sequence[int]) -> str:
    return ", ".join(map(str, ports[:-1])) + f" and {ports[-1]}" if len(ports) > 1 else str(ports[0])


def where(host: str, port: int) -> str:
    """host:port as people write it ([v6]:port)."""
    host = host.strip()
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"
