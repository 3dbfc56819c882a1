"""Benchmark: import directory users from a real slapd into an empty database, then rerun.

    .venv/bin/python -m bench.directory_import [--users 10000] [--databases sqlite,postgresql]

For each database: the first import (everything created) and an unchanged rerun (nothing
written), each in a fresh interpreter so its peak memory is the import's own. A smaller directory
is imported too, so the report shows whether memory grows with the directory's size. Targets:
first import under 30 s, unchanged rerun under 5 s.
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime
from pathlib import Path

from bench.customers_list import DATABASES, fresh_database, machine, markdown_table, text_table
from bench.loader import ENCRYPTION_KEY, make_app, migrate_to_head
from testing.ldap_server import LdapServer, user_entry, users_ldif

RESULTS = Path(__file__).with_name("directory_results.md")
TARGETS = {"first import": 30.0, "unchanged rerun": 5.0}
DEPARTMENTS = ["Sales", "Support", "Finance", "IT", "Operations", "Legal", "Logistics", "Marketing"]


def directory(users: int) -> LdapServer:
    """A started slapd holding `users` accounts, every 50th of them managing the next 49 (listed
    before their reports, so most managers resolve in the same pass)."""
    server = LdapServer()
    entries = []
    for n in range(1, users + 1):
        boss = n - (n - 1) % 50
        entries.append(user_entry(
            f"b{n:06d}", given=f"Given{n % 97}", sn=f"Surname{n:06d}", base_dn=server.base_dn,
            mail=f"b{n:06d}@example.com", title="Engineer", department=DEPARTMENTS[n % len(DEPARTMENTS)],
            telephone=f"+421 2 {5000 + n % 4000:04d} {n % 10000:04d}", office=f"Office {n % 12}",
            manager_dn=None if boss == n else
            f"cn=Given{boss % 97} Surname{boss:06d},ou=People,{server.base_dn}",
            disabled=n % 200 == 0, usn=n))
    server.load_ldif(users_ldif(server.base_dn, entries))
    return server.start()


def _peak_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def import_once(url: str, server: dict) -> dict:
    """One import in this (fresh) process: seconds, Python heap peak, peak RSS, counts."""
    warnings.filterwarnings("ignore", r"ssl\.match_hostname", DeprecationWarning)
    from extensions import db
    from models import DirectorySource
    from models.enums import DirectoryTarget
    from services.customers import SaveOptions
    from services.directory.mapping import DEFAULT_FILTER
    from services.directory.pipeline import SyncOptions, sync_directory
    from services.secrets import SecretBox

    app = make_app(url)
    box = SecretBox(server["key"])  # the parent's: each child would generate its own
    with app.app_context():
        source = db.session.query(DirectorySource).first()
        if source is None:
            from services.reference_data import ensure_reference_data
            from services.transactions import unit_of_work

            with unit_of_work(db.session):
                ensure_reference_data(db.session)
                source = DirectorySource(
                    name="bench", server_urls=server["url"], use_starttls=True, verify_certificate=True,
                    ca_file=server["ca_file"], bind_dn=server["bind_dn"],
                    bind_password_encrypted=box.encrypt(server["password"]), base_dn=server["base_dn"],
                    search_filter=DEFAULT_FILTER, page_size=1000, attribute_map={},
                    target=DirectoryTarget.PERSONS, office_maps_to="site", max_deactivate_percent=10)
                db.session.add(source)
        before = _peak_rss_mib()
        started = time.perf_counter()
        run = sync_directory(db.session, source, box, None, SyncOptions(), SaveOptions("SK"))
        seconds = time.perf_counter() - started
        assert run.status.value == "succeeded", run.message
        return {"seconds": seconds, "rss_before_mib": before, "rss_mib": _peak_rss_mib(),
                "counts": f"{run.created} created, {run.updated} updated, {run.unchanged} unchanged, "
                          f"{run.deactivated} deactivated, {run.failed} failed"}


def in_child(url: str, server: dict) -> dict:
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(import_once, url, server).result()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--small", type=int, default=2_000, help="the smaller directory (memory growth)")
    parser.add_argument("--databases", default=",".join(DATABASES))
    args = parser.parse_args(argv)
    rows = []
    for users in (args.small, args.users):
        print(f"Directory of {users:,} users…", flush=True)
        server = directory(users)
        info = {"url": server.url, "ca_file": server.ca_file, "bind_dn": server.service_dn,
                "password": server.service_password, "base_dn": server.base_dn, "key": ENCRYPTION_KEY}
        try:
            for kind in [d.strip() for d in args.databases.split(",") if d.strip()]:
                with fresh_database(kind) as url:
                    migrate_to_head(url)
                    for phase in ("first import", "unchanged rerun"):
                        result = in_child(url, info)
                        verdict = ("ok" if result["seconds"] < TARGETS[phase] else "MISSED") \
                            if users == args.users else ""
                        rows.append([kind, f"{users:,}", phase, f"{result['seconds']:.1f}",
                                     f"{result['rss_before_mib']:.0f}", f"{result['rss_mib']:.0f}",
                                     result["counts"], verdict])
                        print("  " + " | ".join(rows[-1]), flush=True)
        finally:
            server.stop()
    header = ["database", "users", "run", "seconds", "RSS before MiB", "peak RSS MiB", "result", "target"]
    intro = (f"Directory import from a real slapd (AD schema, ldap:// with StartTLS, pages of 1,000) into an "
             f"empty database, then an unchanged rerun; each run in a fresh process. Machine: {machine()}. "
             f"{datetime.now():%Y-%m-%d %H:%M}. Targets at {args.users:,} users: first import < 30 s, "
             "unchanged rerun < 5 s.")
    notes = ("RSS before: the process with the app loaded, before the run; peak RSS: its high-water mark "
             "(VmHWM) after the run. Their difference is what the import held at most; it follows the "
             "page size (one batch of entries and objects), not the directory's size.")
    print("\n" + "\n\n".join([intro, text_table(header, rows), notes]))
    RESULTS.write_text("## Directory import benchmark\n\n" + "\n\n".join(
        [intro, markdown_table(header, rows), notes]) + "\n")
    print(f"Markdown written to {RESULTS}")


if __name__ == "__main__":
    main()
