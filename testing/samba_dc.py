"""A real Active Directory for the tests and benchmarks: a Samba 4 AD domain controller in a network
namespace of its own, never on the machine's ports.

Provisioning a domain and filling it with thousands of accounts takes a minute or more, so it is
done once per machine and kept as a snapshot (a tarball of the DC's folder in the cache folder,
named after the Samba version and the contents of this file and testing/samba_population.py);
each start restores the snapshot into a temporary folder and starts `samba` there (seconds).

Network: the namespace `cd-samba-N` has its own loopback and one end of a veth pair with
10.233.N.2 (the DC) and 10.233.N.3 (the same DC under a name its certificate does not carry);
the other end, 10.233.N.1, is in the machine's namespace, where the tests run. N is the first
number whose lock file this process could take, so parallel test processes never share one.
Leftovers of a killed run (the namespace, its processes) are removed when N is taken again.

TLS: each start makes a CA and a certificate for dc1.cd.test and 10.233.N.2 (with `cryptography`),
so ldaps:// and StartTLS verify against `ca_file` by address.

Needs root (namespaces) and Debian's samba packages (scripts/bootstrap.sh installs them);
otherwise SambaUnavailable says what is missing.
"""

from __future__ import annotations

import atexit
import datetime as dt
import fcntl
import hashlib
import ipaddress
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import ldap3
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from testing import samba_population as population
from testing.processes import stop_process

ADMIN_PASSWORD = "Desk-Admin-2026!"  # the throwaway test domain's Administrator
DEFAULT_COUNT = 3000
START_TIMEOUT = 90
_NETWORKS = range(1, 200)


class SambaUnavailable(RuntimeError):
    """The DC cannot run here; the message says why (missing packages, not root, no namespaces)."""


def cache_dir() -> Path:
    path = Path(os.environ.get("CD_SAMBA_CACHE") or Path.home() / ".cache" / "customer-desk")
    path.mkdir(parents=True, exist_ok=True)
    return path


def samba_version() -> str:
    binary = shutil.which("samba") or "/usr/sbin/samba"
    try:
        return subprocess.run([binary, "--version"], capture_output=True, text=True, check=True,
                              timeout=30).stdout.split()[-1]
    except (OSError, subprocess.SubprocessError, IndexError) as exc:
        raise SambaUnavailable("Samba is not installed (Debian packages samba, samba-ad-dc, "
                               "samba-ad-provision, samba-dsdb-modules, winbind: `make test` as root "
                               f"installs them): {exc}") from None


def _check_machine() -> None:
    if os.geteuid() != 0:
        raise SambaUnavailable("the Samba DC runs in a network namespace of its own, which needs root")
    for program in ("samba", "samba-tool", "ip"):
        if not (shutil.which(program) or Path(f"/usr/sbin/{program}").exists()):
            raise SambaUnavailable(f"{program} is missing: run `make test` as root (scripts/bootstrap.sh)")


# What a snapshot holds: bump when _provision or _fill change (samba_population.py counts itself).
SNAPSHOT_FORMAT = 1


def snapshot_path(count: int) -> Path:
    digest = hashlib.sha256(f"{SNAPSHOT_FORMAT}".encode())
    digest.update((Path(__file__).parent / "samba_population.py").read_bytes())
    return cache_dir() / f"samba-dc-{samba_version()}-{count}-{digest.hexdigest()[:12]}.tar.gz"


@dataclass
class SambaDirectory:
    """A started DC (see the module docstring). `people`: the users under OU=Staff by sam."""

    folder: Path
    network: int
    count: int
    process: subprocess.Popen | None = None
    people: dict[str, population.Person] = field(default_factory=dict)
    _lock: object = None

    base_dn = population.BASE_DN
    staff_dn = population.STAFF_DN
    admin_dn = f"CN=Administrator,CN=Users,{population.BASE_DN}"
    admin_upn = "Administrator@cd.test"
    admin_netbios = "CD\\Administrator"
    admin_password = ADMIN_PASSWORD
    host_name = "dc1.cd.test"
    group_dn = population.GROUP_DN
    long_title_sam = "u0013"
    long_office_sam = "u0017"
    service_sams = population.SERVICE_ACCOUNTS
    computer_sams = population.COMPUTERS

    @property
    def namespace(self) -> str:
        return f"cd-samba-{self.network}"

    @property
    def address(self) -> str:
        return f"10.233.{self.network}.2"

    @property
    def other_address(self) -> str:
        return f"10.233.{self.network}.3"

    @property
    def unused_address(self) -> str:
        """An address of the DC's network where nothing answers (nothing is there)."""
        return f"10.233.{self.network}.4"

    @property
    def url(self) -> str:
        return f"ldaps://{self.address}"

    @property
    def starttls_url(self) -> str:
        return f"ldap://{self.address}"

    @property
    def mismatch_url(self) -> str:
        return f"ldaps://{self.other_address}"

    @property
    def ca_file(self) -> str:
        return str(self.folder / "tls" / "ca.pem")

    @property
    def expired_sams(self) -> list[str]:
        return [p.sam for p in self.people.values() if p.expired]

    @property
    def disabled_sams(self) -> list[str]:
        return [p.sam for p in self.people.values() if p.disabled]

    @property
    def manager_sams(self) -> list[str]:
        return sorted({p.manager for p in self.people.values() if p.manager})

    @property
    def group_members(self) -> list[str]:
        return [f"u{n:04d}" for n in range(1, population.GROUP_SIZE + 1)]

    @property
    def password(self) -> str:
        return ADMIN_PASSWORD

    def source_fields(self, **overrides) -> dict:
        """Keyword arguments for models.DirectorySource pointing at this DC (persons, ldaps)."""
        from models.enums import DirectoryTarget
        from services.directory.mapping import DEFAULT_FILTER
        fields = {"name": "Samba AD", "server_urls": self.url, "use_starttls": False,
                  "verify_certificate": True, "ca_file": self.ca_file, "bind_dn": self.admin_dn,
                  "base_dn": self.base_dn, "search_filter": DEFAULT_FILTER, "page_size": 500,
                  "attribute_map": {}, "target": DirectoryTarget.PERSONS, "office_maps_to": "site",
                  "max_deactivate_percent": 10}
        return {**fields, **overrides}

    def connection(self) -> ldap3.Connection:
        """A connection bound as Administrator over ldaps (for changing the directory in a test)."""
        tls = ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=self.ca_file)
        server = ldap3.Server(self.url, use_ssl=True, tls=tls, get_info=ldap3.NONE, connect_timeout=10)
        return ldap3.Connection(server, self.admin_dn, ADMIN_PASSWORD, auto_bind=True, raise_exceptions=True,
                                receive_timeout=60)

    def highest_usn(self) -> int:
        with _closing(self.connection()) as conn:
            conn.search("", "(objectClass=*)", search_scope=ldap3.BASE, attributes=["highestCommittedUSN"])
            return int(conn.response[0]["raw_attributes"]["highestCommittedUSN"][0])

    # --- life cycle ----------------------------------------------------------------------------
    def start(self) -> SambaDirectory:
        _network_up(self.network)
        if _answers(self.address, 636):
            raise SambaUnavailable(f"something already answers on {self.url} before the DC started")
        _write_tls(self.folder / "tls", self.host_name, [self.address])
        _configure(self.folder, interfaces=f"lo {self.address}/29 {self.other_address}/29")
        log = open(self.folder / "samba.out", "wb")  # noqa: SIM115 - the process writes it until stopped
        self.process = subprocess.Popen(
            ["ip", "netns", "exec", self.namespace, "samba", "-s", str(self.folder / "etc" / "smb.conf"),
             "-i", "-M", "single", "--debug-stdout"], stdout=log, stderr=subprocess.STDOUT,
            # Interactive samba ends when its stdin closes: a pipe of ours, open while we live, so
            # the DC neither ends with a test runner's stdin nor outlives a killed test process.
            stdin=subprocess.PIPE, start_new_session=True)
        log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while not _answers(self.address, 636):
            if self.process.poll() is not None:
                raise SambaUnavailable(f"samba ended at start: {_tail(self.folder / 'samba.out')}")
            if time.monotonic() > deadline:
                self.stop()
                raise SambaUnavailable(f"samba did not answer on {self.url} within {START_TIMEOUT} s")
            time.sleep(0.2)
        _wait_for_bind(self)
        return self

    def stop(self) -> None:
        if self.process is not None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            stop_process(self.process, timeout=10)
            self.process = None
        _network_down(self.network)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)
        if self._lock is not None:
            self._lock.close()  # type: ignore[attr-defined]
            self._lock = None


def start_directory(count: int = DEFAULT_COUNT) -> SambaDirectory:
    """A DC restored from the machine's snapshot (built first when there is none) and started;
    a start that fails is tried once more on another network number (seen once: a DC that did not
    present the certificate made for it)."""
    try:
        return _start_directory(count)
    except SambaUnavailable as first:
        try:
            return _start_directory(count, avoid=getattr(first, "network", None))
        except SambaUnavailable as second:
            raise SambaUnavailable(f"{second} (and the first try: {first})") from None


def _start_directory(count: int, avoid: int | None = None) -> SambaDirectory:
    _check_machine()
    snapshot = build_snapshot(count)
    network, lock = _take_network(avoid)
    folder = Path(tempfile.mkdtemp(prefix="cd-samba-"))
    try:
        _restore(snapshot, folder)
        directory = SambaDirectory(folder=folder, network=network, count=count,
                                   people={p.sam: p for p in population.people(count)}, _lock=lock)
        atexit.register(directory.remove)
        return directory.start()
    except SambaUnavailable as exc:
        exc.network = network  # type: ignore[attr-defined]
        _network_down(network)
        shutil.rmtree(folder, ignore_errors=True)
        lock.close()
        raise
    except BaseException:
        _network_down(network)
        shutil.rmtree(folder, ignore_errors=True)
        lock.close()
        raise


def build_snapshot(count: int = DEFAULT_COUNT) -> Path:
    """The snapshot of a provisioned and filled DC, built once per machine (under a lock, so
    parallel test processes build it once)."""
    _check_machine()
    target = snapshot_path(count)
    with open(cache_dir() / "samba-build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if target.exists():
            return target
        started = time.monotonic()
        folder = Path(tempfile.mkdtemp(prefix="cd-samba-build-"))
        network, net_lock = _take_network()
        try:
            _provision(folder / "dc")
            directory = SambaDirectory(folder=folder / "dc", network=network, count=count)
            directory.start()
            try:
                _fill(directory, count)
            finally:
                directory.stop()
            shutil.rmtree(folder / "dc" / "tls", ignore_errors=True)
            partial = target.with_suffix(".partial")
            with tarfile.open(partial, "w:gz") as tar:
                tar.add(folder / "dc", arcname="dc")
            partial.rename(target)
            for old in cache_dir().glob(f"samba-dc-*-{count}-*.tar.gz"):  # of older code or Samba
                if old != target:
                    old.unlink()
        finally:
            _network_down(network)
            net_lock.close()
            shutil.rmtree(folder, ignore_errors=True)
        print(f"Samba DC snapshot with {count} users built in {time.monotonic() - started:.0f} s: {target}")
        return target


# --- building ------------------------------------------------------------------------------------
def _provision(folder: Path) -> None:
    command = ["samba-tool", "domain", "provision", f"--targetdir={folder}", f"--realm={population.REALM}",
               f"--domain={population.DOMAIN}", "--server-role=dc", "--dns-backend=SAMBA_INTERNAL",
               "--use-rfc2307", f"--host-name={population.HOST}", "--host-ip=127.0.0.1",
               f"--adminpass={ADMIN_PASSWORD}", "--option=interfaces=lo", "--option=bind interfaces only=yes",
               "--option=ldb:nosync=true"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise SambaUnavailable(f"samba-tool domain provision failed: {done.stderr[-2000:]}")


def _fill(directory: SambaDirectory, count: int) -> None:
    """OUs, the people with their managers (managers first: `manager` must name an existing
    entry), service and computer accounts, contacts and the group — over ldaps, as an admin would.
    Accounts get no password (PASSWD_NOTREQD), which AD then does not hash: ~130 adds a second."""
    people = population.people(count)
    dn_of = {p.sam: p.dn for p in people}
    user = ["top", "person", "organizationalPerson", "user"]
    with _closing(directory.connection()) as conn:
        for dn in population.containers():
            conn.add(dn, ["top", "organizationalUnit"])
        # Managers before their reports: the head, then the other managers, then everyone else.
        ordered = sorted(people, key=lambda p: (p.manager is not None, p.sam not in
                                                {q.manager for q in people}, p.n))
        for person in ordered:
            conn.add(person.dn, user, person.attributes(dn_of))
        for extra in population.extras():
            conn.add(extra.dn, extra.object_class, extra.attributes)
        conn.add(population.GROUP_DN, ["top", "group"],
                 {"sAMAccountName": "Desk Users",
                  "member": [dn_of[f"u{n:04d}"] for n in range(1, population.GROUP_SIZE + 1)]})


def _restore(snapshot: Path, folder: Path) -> None:
    with tarfile.open(snapshot) as tar:
        tar.extractall(folder, filter="fully_trusted")  # our own snapshot: modes matter to samba
    for path in (folder / "dc").iterdir():
        path.rename(folder / path.name)
    (folder / "dc").rmdir()


def _configure(folder: Path, *, interfaces: str) -> None:
    """smb.conf for this folder: only LDAP (no DNS, SMB, Kerberos password service…), our own
    certificate, files inside the folder. The provisioned smb.conf names the folder it was made
    in; the restored copy gets its own."""
    conf = folder / "etc" / "smb.conf"
    text = conf.read_text()
    made_in = next((line.split("=", 1)[1].strip().removesuffix("/private") for line in text.splitlines()
                    if line.strip().startswith("private dir =")), None)
    if made_in:
        text = text.replace(made_in, str(folder))
    lines = [line for line in text.splitlines() if line.strip().split(" =")[0] not in _OURS]
    at = lines.index("[global]") + 1
    ours = {
        "interfaces": interfaces, "bind interfaces only": "yes", "log file": f"{folder}/log.%m",
        "pid directory": f"{folder}/run", "ncalrpc dir": f"{folder}/run/ncalrpc",
        "winbindd socket directory": f"{folder}/run/winbindd", "lock directory": str(folder),
        "state directory": f"{folder}/state", "cache directory": f"{folder}/cache",
        "private dir": f"{folder}/private", "binddns dir": f"{folder}/bind-dns",
        "server services": "-dns -nbt -wrepl -kpasswd -drepl -dnsupdate -winbindd -smb -s3fs",
        "tls enabled": "yes", "tls keyfile": f"{folder}/tls/key.pem",
        "tls certfile": f"{folder}/tls/cert.pem", "tls cafile": f"{folder}/tls/ca.pem", "log level": "0",
    }
    lines[at:at] = [f"\t{key} = {value}" for key, value in ours.items()]
    conf.write_text("\n".join(lines) + "\n")
    (folder / "run").mkdir(exist_ok=True)


_OURS = {"interfaces", "bind interfaces only", "log file", "pid directory", "ncalrpc dir",
         "winbindd socket directory", "lock directory", "state directory", "cache directory", "private dir",
         "binddns dir", "server services", "tls enabled", "tls keyfile", "tls certfile", "tls cafile",
         "log level", "logging"}


def _write_tls(folder: Path, host: str, addresses: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Customer Desk test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
          .not_valid_after(now + dt.timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, encipher_only=False,
                                       decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.DNSName(host)]
    names += [x509.IPAddress(ipaddress.ip_address(a)) for a in addresses]
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .sign(ca_key, hashes.SHA256()))
    (folder / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file = folder / "key.pem"
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_file.chmod(0o600)


# --- network ---------------------------------------------------------------------------------------
def _take_network(avoid: int | None = None):
    """(N, its lock file held open): the first free network number of this machine but `avoid`."""
    folder = Path(tempfile.gettempdir())
    for number in _NETWORKS:
        if number == avoid:
            continue
        lock = open(folder / f"cd-samba-net-{number}.lock", "w")  # noqa: SIM115 - held while the DC runs
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.close()
            continue
        _network_down(number)  # what a killed run left behind
        return number, lock
    raise SambaUnavailable("no free network number for the Samba DC (every lock taken)")


def _ip(*args: str, check: bool = True) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and done.returncode != 0:
        raise SambaUnavailable(f"ip {' '.join(args)}: {done.stderr.strip()}")


def _network_up(number: int) -> None:
    namespace, outside, inside = f"cd-samba-{number}", f"cdsmb{number}a", f"cdsmb{number}b"
    _network_down(number)
    _ip("netns", "add", namespace)
    _ip("link", "add", outside, "type", "veth", "peer", "name", inside)
    _ip("link", "set", inside, "netns", namespace)
    _ip("addr", "add", f"10.233.{number}.1/29", "dev", outside)
    _ip("link", "set", outside, "up")
    for address in (f"10.233.{number}.2/29", f"10.233.{number}.3/29"):
        _ip("-n", namespace, "addr", "add", address, "dev", inside)
    _ip("-n", namespace, "link", "set", inside, "up")
    _ip("-n", namespace, "link", "set", "lo", "up")


def _network_down(number: int) -> None:
    namespace = f"cd-samba-{number}"
    pids = subprocess.run(["ip", "netns", "pids", namespace], capture_output=True, text=True).stdout.split()
    for pid in pids:
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass
    _ip("netns", "del", namespace, check=False)
    _ip("link", "del", f"cdsmb{number}a", check=False)


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _wait_for_bind(directory: SambaDirectory) -> None:
    """The port opens before the directory answers binds: wait for a bind."""
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            directory.connection().unbind()
            return
        except ldap3.core.exceptions.LDAPException as exc:
            if time.monotonic() > deadline:
                directory.stop()
                raise SambaUnavailable(f"the DC does not accept binds: {exc}; its log: "
                                       f"{_tail(directory.folder / 'samba.out')}") from None
            time.sleep(0.3)


def _tail(path: Path) -> str:
    try:
        return path.read_text(errors="replace")[-1500:]
    except OSError:
        return ""


class _closing:
    def __init__(self, conn: ldap3.Connection):
        self.conn = conn

    def __enter__(self) -> ldap3.Connection:
        return self.conn

    def __exit__(self, *exc) -> None:
        try:
            self.conn.unbind()
        except ldap3.core.exceptions.LDAPException:
            pass
