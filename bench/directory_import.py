"""Benchmark: import directory users from a real Active Directory (a Samba 4 AD DC) into an empty
database, then rerun unchanged.

    .venv/bin/python -m bench.directory_import [--users 10000] [--small 3000]
        [--databases sqlite,postgresql] [--server samba|slapd] [--profile FOLDER]

The DC is testing.samba_dc's, restored from the machine's snapshot for that many users (built
on first use: its build time is printed; about a minute per 3,000 users). `--server slapd`
uses a slapd shaped like AD instead (testing.ldap_server), as before issue 16.

For each database: the first import (everything created), an unchanged full rerun (nothing
written) and an unchanged changes-only rerun (uSNChanged, as the schedules run it), each in a
fresh interpreter so its peak memory is the import's own; the SQL
statements each sent are counted. A smaller directory is imported too, so the report shows
whether memory grows with the directory's size. Targets (issue 16): 10,000 users, first
import ≤ 30 s, unchanged rerun ≤ 5 s. `--profile FOLDER` writes a cProfile of each run of the
large directory there and prints where its time went.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from bench.customers_list import machine, markdown_table, text_table
from bench.loader import ENCRYPTION_KEY, make_app, migrate_to_head
from bench.registry import DATABASES, fresh_database
from testing.ldap_server import LdapServer, user_entry, users_ldif

RESULTS = Path(__file__).with_name("directory_results.md")
TARGETS = {"first import": 30.0, "unchanged rerun": 5.0, "changes-only rerun": 5.0}
FULL = {"first import": True, "unchanged rerun": True, "changes-only rerun": False}
DEPARTMENTS = ["Sales", "Support", "Finance", "IT", "Operations", "Legal", "Logistics", "Marketing"]
PAGE_SIZE = 1000  # AD's MaxPageSize


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def slapd_directory(users: int) -> LdapServer:
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


@contextmanager
def directory(kind: str, users: int):
    """(what a child process needs to reach the directory, a description) of a started directory
    of `users` people; stopped when the block ends."""
    if kind == "slapd":
        server = slapd_directory(users)
        try:
            yield ({"url": server.url, "use_starttls": True, "ca_file": server.ca_file,
                    "bind_dn": server.service_dn, "password": server.service_password,
                    "base_dn": server.base_dn, "key": ENCRYPTION_KEY},
                   "slapd (AD schema), ldap:// with StartTLS")
        finally:
            server.stop()
        return
    from testing.samba_dc import build_snapshot, snapshot_path, start_directory

    if snapshot_path(users).exists():
        print(f"  the DC's snapshot for {users:,} users is there already", flush=True)
    else:
        started = time.perf_counter()
        build_snapshot(users)
        print(f"  the DC's snapshot for {users:,} users built in {time.perf_counter() - started:.0f} s "
              f"(once per machine; load average now {load_average()})", flush=True)
    started = time.perf_counter()
    dc = start_directory(users)
    print(f"  DC restored and started in {time.perf_counter() - started:.1f} s", flush=True)
    try:
        yield ({"url": dc.url, "use_starttls": False, "ca_file": dc.ca_file, "bind_dn": dc.admin_dn,
                "password": dc.password, "base_dn": dc.base_dn, "key": ENCRYPTION_KEY},
               "Samba 4.17 AD DC, ldaps:// with its CA file")
    finally:
        dc.remove()


def _peak_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def import_once(url: str, server: dict, profile: str | None = None, full: bool = True) -> dict:
    """One import in this (fresh) process — a full one, or with `full` False only what changed
    since the last (uSNChanged) — : seconds, peak RSS before and after, SQL statements sent,
    counts. With `profile` (a file name), a cProfile of the run is written there."""
    warnings.filterwarnings("ignore", r"ssl\.match_hostname", DeprecationWarning)
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

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
                    name="bench", server_urls=server["url"], use_starttls=server["use_starttls"],
                    verify_certificate=True, ca_file=server["ca_file"], bind_dn=server["bind_dn"],
                    bind_password_encrypted=box.encrypt(server["password"]), base_dn=server["base_dn"],
                    search_filter=DEFAULT_FILTER, page_size=PAGE_SIZE, attribute_map={},
                    target=DirectoryTarget.PERSONS, office_maps_to="site", max_deactivate_percent=10)
                db.session.add(source)
        statements = [0]

        def count(*_args) -> None:
            statements[0] += 1

        event.listen(Engine, "before_cursor_execute", count)
        before = _peak_rss_mib()
        profiler = None
        if profile:
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        started = time.perf_counter()
        run = sync_directory(db.session, source, box, None, SyncOptions(full=full), SaveOptions("SK"))
        seconds = time.perf_counter() - started
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(profile)
        event.remove(Engine, "before_cursor_execute", count)
        assert run.status.value == "succeeded", run.message
        assert full or run.incremental, "the changes-only rerun read every entry"
        return {"seconds": seconds, "rss_before_mib": before, "rss_mib": _peak_rss_mib(),
                "statements": statements[0],
                "counts": f"{run.created} created, {run.updated} updated, {run.unchanged} unchanged, "
                          f"{run.deactivated} deactivated, {run.failed} failed, {run.left_out} left out"}


def in_child(url: str, server: dict, profile: str | None = None, full: bool = True) -> dict:
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(import_once, url, server, profile, full).result()


def print_profile(path: str, lines: int = 25) -> None:
    import pstats

    print(f"  where the time went ({path}), by cumulative time:")
    pstats.Stats(path).sort_stats("cumulative").print_stats(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--small", type=int, default=3_000,
                        help="the smaller directory (memory growth); 0: none")
    parser.add_argument("--databases", default=",".join(DATABASES))
    parser.add_argument("--server", choices=("samba", "slapd"), default="samba")
    parser.add_argument("--profile", help="a folder for cProfile files of the large directory's runs")
    args = parser.parse_args(argv)
    loads = [f"load average at the start {load_average()}"]
    print(f"{machine()}; {loads[0]}", flush=True)
    rows, described = [], []
    for users in [n for n in (args.small, args.users) if n]:
        print(f"Directory of {users:,} users ({args.server})…", flush=True)
        with directory(args.server, users) as (info, description):
            described.append(description)
            for kind in [d.strip() for d in args.databases.split(",") if d.strip()]:
                with fresh_database(kind) as url:
                    migrate_to_head(url)
                    for phase in TARGETS:
                        profile = None
                        if args.profile and users == args.users:
                            os.makedirs(args.profile, exist_ok=True)
                            profile = os.path.join(args.profile, f"{kind}-{phase.replace(' ', '-')}.prof")
                        result = in_child(url, info, profile, FULL[phase])
                        verdict = ("ok" if result["seconds"] <= TARGETS[phase] else "MISSED") \
                            if users == args.users else ""
                        rows.append([kind, f"{users:,}", phase, f"{result['seconds']:.1f}",
                                     f"{result['rss_before_mib']:.0f}", f"{result['rss_mib']:.0f}",
                                     f"{result['statements']:,}", result["counts"], verdict])
                        print("  " + " | ".join(rows[-1]) + f"  (load average {load_average()})", flush=True)
                        if profile:
                            print_profile(profile)
    loads.append(f"at the end {load_average()}")
    header = ["database", "users", "run", "seconds", "RSS before MiB", "peak RSS MiB", "SQL statements",
              "result", "target"]
    intro = (f"Directory import from a real directory — {described[-1]}, pages of {PAGE_SIZE:,} — into an "
             f"empty database, then an unchanged rerun; each run in a fresh process. Machine: {machine()}; "
             f"shared with other work: {', '.join(loads)} (1, 5, 15 min). {datetime.now():%Y-%m-%d %H:%M}. "
             f"Targets at {args.users:,} users: first import ≤ 30 s, unchanged rerun ≤ 5 s (the full "
             "one, and the changes-only one that schedules run every few minutes).")
    notes = ("RSS before: the process with the app loaded, before the run; peak RSS: its high-water mark "
             "(VmHWM) after the run. Their difference is what the import held at most; it follows the "
             "page size (one batch of entries and objects), not the directory's size. SQL statements: "
             "every statement the run sent (cursor executions; an executemany counts once).")
    print("\n" + "\n\n".join([intro, text_table(header, rows), notes]))
    RESULTS.write_text("## Directory import benchmark\n\n" + "\n\n".join(
        [intro, markdown_table(header, rows), notes]) + "\n")
    print(f"Markdown written to {RESULTS}")


if __name__ == "__main__":
    main()
