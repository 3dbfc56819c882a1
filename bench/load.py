"""Load benchmark: signed-in users against the production server, on SQLite and PostgreSQL, with and
without a CSV import running.

    .venv/bin/python -m bench.load [--db sqlite,postgresql] [--customers 100000] [--users 8,32]
        [--duration 120] [--imports off,on] [--import-rows 5000] [--think 1-3] [--output FILE]

(`make bench BENCH=load BENCH_ARGS="…"` installs the pinned locust first: pyproject's `bench` extra.)

For each database, once: a fresh database (SQLite in a temporary folder; PostgreSQL in a throwaway
cluster from testing.postgres — fsync off, as the tests run it) built by the migrations and filled
by bench.fast_load with the labelled registry of tests.labelled_duplicates (`--customers`, three
contacts each, name vocabulary included: the rows the application itself writes), then one
account per simulated user (every fourth a maintainer; each operator responsible for 1/N of the
customers) and an importing maintainer. How long that takes is printed.

Then for each number of users and each import setting, on a copy of that database (SQLite: the
backup API; PostgreSQL: CREATE DATABASE … TEMPLATE), so every run starts from the same data:
scripts/serve-production.sh (gunicorn.conf.py with WEB_CONCURRENCY=4, one `flask worker`), and
locust headless on bench/locustfile.py for `--duration` seconds — the users sign in once and do the
day's mix; with an import, one more maintainer imports `--import-rows`-row CSV files one after
the other through the import pages (upload, mapping, preview, run) for the whole run.

Printed per run: requests/s, per action count, p50/p95/p99/max and errors, the first messages of
the errors, imports finished and their rows/s, RSS of each gunicorn worker and of the job worker
(peak over the run), CPU seconds of the server, the job worker, the database and locust itself
(all share the machine), and the load average. The same tables go to `--output` as Markdown.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter, defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from cryptography.fernet import Fernet

from bench.customers_list import machine, markdown_table, text_table

ROOT = Path(__file__).resolve().parent.parent
LOCUSTFILE = Path(__file__).with_name("locustfile.py")
RESULTS = Path(__file__).with_name("load_results.md")
DATABASES = ("sqlite", "postgresql")
PASSWORD = "correct horse battery"
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
TICKS = os.sysconf("SC_CLK_TCK")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default=",".join(DATABASES), help="comma-separated: sqlite, postgresql")
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--contacts", type=int, default=None, help="default: three per customer")
    parser.add_argument("--users", default="8,32", help="comma-separated: simulated users of each run")
    parser.add_argument("--duration", type=int, default=120, help="seconds of each run")
    parser.add_argument("--imports", default="off,on", help="comma-separated: off (no import), on")
    parser.add_argument("--import-rows", type=int, default=2_000, help="rows of each imported CSV file")
    parser.add_argument("--think", default="1-3", help="seconds a user pauses between actions: MIN-MAX")
    parser.add_argument("--spawn-rate", type=float, default=4, help="users started per second")
    parser.add_argument("--web-workers", type=int, default=4, help="gunicorn worker processes")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                        help="more environment for the server and the job worker (repeatable)")
    parser.add_argument("--output", type=Path, default=RESULTS, help="Markdown results file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, plan, results)")
    args = parser.parse_args(argv)
    args.db = [d.strip() for d in args.db.split(",") if d.strip()]
    args.users = [int(u) for u in args.users.split(",") if u.strip()]
    args.imports = [i.strip() == "on" for i in args.imports.split(",") if i.strip()]
    if set(args.db) - set(DATABASES):
        parser.error(f"--db: one of {', '.join(DATABASES)}")
    return args


# -- the database, once per kind --------------------------------------------------------------------

@dataclass
class Prepared:
    url: str
    seconds: dict[str, float] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    server: str = ""


def accounts(count: int) -> list[dict]:
    """One account per simulated user: every fourth a maintainer, the others operators."""
    return [{"email": f"bench.user{i:02d}@example.com", "role": "maintainer" if i % 4 == 0 else "operator",
             "index": i} for i in range(1, count + 1)]


def create_accounts(url: str, users: list[dict], importer: str) -> None:
    """The accounts through the domain's command (argon2 with the configured cost), and each
    operator responsible for the customers whose id is its index modulo the number of accounts."""
    from sqlalchemy import text

    from bench.loader import make_app
    from extensions import db
    from models.enums import OperatorRole
    from services.operators import create_operator
    from services.transactions import unit_of_work

    app = make_app(url)
    with app.app_context():
        with unit_of_work(db.session):
            for user in [*users, {"email": importer, "role": "maintainer", "index": 0}]:
                create_operator(db.session, email=user["email"], password=PASSWORD, first_name="Bench",
                                last_name=f"User {user['index']:02d}", role=OperatorRole(user["role"]))
        with unit_of_work(db.session):
            for user in users:
                if user["role"] == "operator":
                    db.session.execute(text(
                        "INSERT INTO customer_operator (customer_id, operator_id) SELECT c.id, o.id "
                        "FROM customer c, operator o WHERE o.email = :email AND c.id % :n = :k"),
                        {"email": user["email"], "n": len(users), "k": user["index"] - 1})
        db.session.remove()
        db.engine.dispose()


def plan_data(url: str, users: list[dict]) -> dict:
    """What the simulated users type and open, drawn from the loaded registry."""
    import random

    from sqlalchemy import create_engine, text

    from services.contact_info import format_phone

    rng = random.Random(15)
    engine = create_engine(url)
    with engine.connect() as connection:
        top = connection.scalar(text("SELECT max(id) FROM customer"))
        persons = connection.execute(text(
            "SELECT first_name, last_name, email, primary_phone FROM customer WHERE kind = 'person' "
            "AND id % 97 = 5 ORDER BY id LIMIT 400")).all()
        companies = connection.execute(text(
            "SELECT company_name FROM customer WHERE kind = 'company' AND id % 89 = 3 ORDER BY id LIMIT 150"
        )).scalars().all()
    engine.dispose()
    terms = [p.last_name for p in persons[:120]]
    terms += [f"{p.last_name} {p.first_name[:2]}" for p in persons[120:200]]
    terms += [c.split()[0] for c in companies[:100]] + [c for c in companies[100:130]]
    terms += [p.email for p in persons[200:240] if p.email]
    terms += [format_phone(p.primary_phone).split(" ", 1)[-1] for p in persons[240:270] if p.primary_phone]
    for user in users:
        n = len(users)  # as create_accounts assigned them: ids ≡ index - 1 (mod n)
        slice_ = range(user["index"] - 1 or n, top + 1, n)
        user["customers"] = sorted(rng.sample(slice_, min(500, len(slice_))))
    return {"search_terms": terms, "existing_names": [f"{p.first_name} {p.last_name}" for p in persons[270:]]}


def prepare(kind: str, url: str, args, users: list[dict], importer: str) -> tuple[Prepared, dict]:
    from bench import fast_load
    from tests.labelled_duplicates import Background

    prepared = Prepared(url)
    started = time.perf_counter()
    fast_load.prepare(url)
    prepared.seconds["migrate"] = time.perf_counter() - started
    report = fast_load.load(url, Background(args.customers, args.contacts),
                            progress=lambda line: print(f"[{kind}] {line}", flush=True,
                                                        end="\r" if sys.stdout.isatty() else "\n"))
    print()
    prepared.seconds.update(report.seconds)
    prepared.rows = report.rows
    started = time.perf_counter()
    create_accounts(url, users, importer)
    data = plan_data(url, users)
    prepared.seconds["accounts"] = time.perf_counter() - started
    return prepared, data


# -- one run -------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = defaultdict(list)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            tree[int(stat.rsplit(")", 1)[1].split()[1])].append(int(entry.name))
    return tree


def _descendants(root: int, tree: dict[int, list[int]]) -> list[int]:
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(tree.get(pid, []))
    return found


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _rss_and_cpu(pid: int) -> tuple[int, float] | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[21]) * PAGE_SIZE, (int(fields[11]) + int(fields[12])) / TICKS


class Sampler(threading.Thread):
    """Every second: RSS and CPU time of the gunicorn workers, the job worker, the database and
    locust, and the load average."""

    def __init__(self, server_pid: int, database_pid: int | None):
        super().__init__(daemon=True)
        self.server_pid, self.database_pid, self.locust_pid = server_pid, database_pid, None
        self.stop_event = threading.Event()
        self.peak_rss: dict[int, int] = {}
        self.role: dict[int, str] = {}
        self.cpu_first: dict[int, float] = {}
        self.cpu_last: dict[int, float] = {}
        self.loads: list[float] = []

    def sample(self) -> None:
        tree = _children()
        groups = {"server": _descendants(self.server_pid, tree)}
        if self.database_pid:
            groups["database"] = _descendants(self.database_pid, tree)
        if self.locust_pid:
            groups["locust"] = _descendants(self.locust_pid, tree)
        masters = {pid for pid in groups["server"] if "gunicorn" in _cmdline(pid)
                   and "gunicorn" not in _cmdline(next((p for p, c in tree.items() if pid in c), 0))}
        for group, pids in groups.items():
            for pid in pids:
                found = _rss_and_cpu(pid)
                if found is None:
                    continue
                rss, cpu = found
                if pid not in self.role:
                    command = _cmdline(pid)
                    parent = next((p for p, c in tree.items() if pid in c), 0)
                    job_worker = " worker" in command and "flask" in command
                    self.role[pid] = (group if group != "server" else
                                      "gunicorn worker" if parent in masters else
                                      "gunicorn master" if pid in masters else
                                      "job worker" if job_worker else "script")
                self.peak_rss[pid] = max(rss, self.peak_rss.get(pid, 0))
                # Running at the first sample: counted from then; started later: all of it.
                self.cpu_first.setdefault(pid, 0.0 if self.loads else cpu)
                self.cpu_last[pid] = cpu
        self.loads.append(float(Path("/proc/loadavg").read_text().split()[0]))

    def run(self) -> None:
        while not self.stop_event.is_set():
            self.sample()
            self.stop_event.wait(1.0)

    def rss_mib(self, role: str) -> list[float]:
        return [self.peak_rss[p] / 2**20 for p in sorted(self.peak_rss) if self.role.get(p) == role]

    def cpu_seconds(self, roles: tuple[str, ...]) -> float:
        return sum(self.cpu_last[p] - self.cpu_first.get(p, 0.0) for p in self.cpu_last
                   if self.role.get(p) in roles)


def run_database(kind: str, base_url: str, run_id: str, folder: Path, cluster) -> str:
    """A copy of the loaded database for one run."""
    if kind == "sqlite":
        target = folder / f"{run_id}.db"
        source = sqlite3.connect(base_url.removeprefix("sqlite:///"))
        copy = sqlite3.connect(target)
        with copy:
            source.backup(copy)
        source.close()
        copy.close()
        return f"sqlite:///{target}"
    import psycopg

    with psycopg.connect(f"host=127.0.0.1 port={cluster.port} user=postgres dbname=postgres",
                         autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{run_id}" TEMPLATE "desk_base"')
    return cluster.url(run_id)


def drop_database(kind: str, url: str, run_id: str, cluster) -> None:
    if kind == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            Path(url.removeprefix("sqlite:///") + suffix).unlink(missing_ok=True)
        return
    import psycopg

    with psycopg.connect(f"host=127.0.0.1 port={cluster.port} user=postgres dbname=postgres",
                         autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{run_id}" WITH (FORCE)')


@contextmanager
def served(url: str, folder: Path, run_id: str, args, port: int):
    """scripts/serve-production.sh on 127.0.0.1:`port` (gunicorn + one job worker), until ready;
    stopped (SIGTERM, as a service manager does) afterwards. Yields its pid and log path."""
    env = {**os.environ, "DATABASE_URL": url, "SECRET_KEY": secrets.token_urlsafe(48),
           "ENCRYPTION_KEY": Fernet.generate_key().decode(), "PHONE_DEFAULT_REGION": "SK",
           "WEB_CONCURRENCY": str(args.web_workers), "JOB_WORKERS": "1",
           "GUNICORN_BIND": f"127.0.0.1:{port}", "LOG_LEVEL": "WARNING",
           "PHOTO_DIR": str(folder / "photos"), "BULK_IMPORT_DIR": str(folder / "imports"),
           "JOB_QUEUE_URL": f"sqlite:///{folder / run_id}-jobs.sqlite3" if url.startswith("sqlite") else ""}
    env.pop("APP_ENV", None)  # production marks the cookie Secure: no cookie over plain http
    env.update(dict(item.split("=", 1) for item in args.env))
    log = folder / f"{run_id}-server.log"
    script = ROOT / "scripts" / "serve-production.sh"
    if script.exists():
        command = ["bash", str(script), str(port)]
    else:  # before that script existed: the same processes by hand
        command = ["bash", "-c", f".venv/bin/flask --app app worker & exec .venv/bin/gunicorn "
                                 f"-w {args.web_workers} -b 127.0.0.1:{port} 'app:create_app()'"]
    with open(log, "wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    try:
        deadline = time.time() + 120
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the server stopped at start; see {log}:\n{log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=5) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if time.time() > deadline:
                raise RuntimeError(f"the server did not answer within 120 s; see {log}")
            time.sleep(0.5)
        yield process.pid, log
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def locust(plan: Path, results: Path, users: int, importing: bool, args, port: int, sampler: Sampler,
           log: Path) -> None:
    classes = ["Desk", "Importer"] if importing else ["Desk"]
    command = [str(Path(sys.executable).with_name("locust")), "-f", str(LOCUSTFILE), "--headless",
               "-u", str(users + (1 if importing else 0)), "-r", str(args.spawn_rate),
               "-t", f"{args.duration}s", "--host", f"http://127.0.0.1:{port}", "--only-summary",
               "--stop-timeout", "30", "--loglevel", "WARNING", *classes]
    env = {**os.environ, "BENCH_PLAN": str(plan), "BENCH_RESULTS": str(results), "BENCH_THINK": args.think}
    with open(log, "wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        sampler.locust_pid = process.pid
        try:
            process.wait(timeout=args.duration + 180)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if not results.exists():
        raise RuntimeError(f"locust wrote no results; see {log}:\n{log.read_text()[-3000:]}")


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))] if ordered else 0.0


ACTION_ORDER = ["sign in", "customers list", "search", "open a customer", "duplicate lookup while typing",
                "quick-create a person", "edit a customer: form", "edit a customer: save",
                "create a request: form", "create a request: save", "page after a save"]


def summarise(raw: dict, duration: int) -> dict:
    by_action: dict[str, list] = defaultdict(list)
    for name, start, ms, ok, message in raw["requests"]:
        by_action[name].append((start, ms, ok, message))
    desk = [r for name, rows in by_action.items() if not name.startswith("import") for r in rows]
    span = (max(s + ms / 1000 for s, ms, _, _ in desk) - min(s for s, _, _, _ in desk)) if desk else duration
    rows = []
    for name in sorted(by_action, key=lambda n: (n.startswith("import"),
                                                 ACTION_ORDER.index(n) if n in ACTION_ORDER else 99, n)):
        timings = [ms for _, ms, _, _ in by_action[name]]
        errors = [m for _, _, ok, m in by_action[name] if not ok]
        rows.append({"action": name, "count": len(timings), "errors": len(errors),
                     "p50": percentile(timings, 0.50), "p95": percentile(timings, 0.95),
                     "p99": percentile(timings, 0.99), "max": max(timings)})
    messages = Counter((name, m) for name, rows_ in by_action.items() for _, _, ok, m in rows_ if not ok)
    return {"rows": rows, "requests": len(desk), "seconds": span,
            "throughput": len(desk) / span if span else 0.0,
            "errors": sum(r["errors"] for r in rows), "messages": messages.most_common(8),
            "imports": raw.get("imports", [])}


def server_errors(log: Path) -> list[str]:
    """The server's own error lines (tracebacks' last lines, 500s), for the report."""
    found = []
    for line in log.read_text(errors="replace").splitlines():
        if ("ERROR" in line or "CRITICAL" in line or "Error:" in line or "WORKER TIMEOUT" in line) \
                and line not in found:
            found.append(line[:300])
    return found


def one_run(kind: str, base_url: str, folder: Path, cluster, args, plan: dict, users: int,
            importing: bool) -> dict:
    run_id = f"run_{kind}_{users}u_{'import' if importing else 'quiet'}"
    url = run_database(kind, base_url, run_id, folder, cluster)
    port = free_port()
    plan_path, results = folder / f"{run_id}-plan.json", folder / f"{run_id}-results.json"
    plan_path.write_text(json.dumps(plan))
    results.unlink(missing_ok=True)
    database_pid = int((cluster.datadir / "postmaster.pid").read_text().split()[0]) if cluster else None
    try:
        with served(url, folder, run_id, args, port) as (server_pid, log):
            sampler = Sampler(server_pid, database_pid)
            sampler.sample()
            load_before = sampler.loads[-1]
            sampler.start()
            try:
                locust(plan_path, results, users, importing, args, port, sampler,
                       folder / f"{run_id}-locust.log")
            finally:
                sampler.stop_event.set()
                sampler.join()
    finally:
        drop_database(kind, url, run_id, cluster)
    summary = summarise(json.loads(results.read_text()), args.duration)
    summary.update(users=users, importing=importing, database=kind,
                   rss_workers=sampler.rss_mib("gunicorn worker"),
                   rss_job_worker=sampler.rss_mib("job worker"),
                   rss_master=sampler.rss_mib("gunicorn master"),
                   cpu={"gunicorn": sampler.cpu_seconds(("gunicorn worker", "gunicorn master")),
                        "job worker": sampler.cpu_seconds(("job worker",)),
                        "database": sampler.cpu_seconds(("database",)),
                        "locust": sampler.cpu_seconds(("locust",))},
                   load={"before": load_before, "max": max(sampler.loads), "end": sampler.loads[-1]},
                   server_errors=server_errors(log))
    return summary


# -- the report -------------------------------------------------------------------------------------

HEADER = ["action", "requests", "errors", "p50 ms", "p95 ms", "p99 ms", "max ms"]


def run_title(s: dict) -> str:
    importing = "with a CSV import running" if s["importing"] else "no import"
    return f"{s['database']}, {s['users']} users, {importing}"


def run_report(s: dict, table) -> str:
    rows = [[r["action"], f"{r['count']:,}", str(r["errors"]), f"{r['p50']:.0f}", f"{r['p95']:.0f}",
             f"{r['p99']:.0f}", f"{r['max']:.0f}"] for r in s["rows"]]
    workers = ", ".join(f"{m:.0f}" for m in s["rss_workers"])
    parts = [f"{s['requests']:,} requests of the users in {s['seconds']:.0f} s: "
             f"{s['throughput']:.1f} requests/s; errors {s['errors']}.", table(HEADER, rows)]
    if s["messages"]:
        parts.append("Errors (action: first message — count): " + "; ".join(
            f"{name}: {message} — {count}" for (name, message), count in s["messages"]))
    for done in s["imports"]:
        counts = ", ".join(f"{k} {v}" for k, v in done.get("counts", {}).items() if v)
        seconds = done.get("seconds")
        rate = f", {done['rows'] / seconds:.0f} rows/s" if seconds and done.get("status") == "done" else ""
        parts.append(f"Import of {done['file']} ({done['rows']:,} rows): {done.get('status')}"
                     f"{f' after {seconds:.0f} s' if seconds else ' (still going when the run ended)'}"
                     f"{rate}; {counts or 'nothing counted yet'}.")
    cpu = ", ".join(f"{k} {v:.0f} s" for k, v in s["cpu"].items()
                    if k != "database" or s["database"] != "sqlite")
    master = ", ".join(f"{m:.0f}" for m in s["rss_master"]) or "—"
    job_worker = ", ".join(f"{m:.0f}" for m in s["rss_job_worker"]) or "—"
    parts.append(f"Peak RSS MiB: gunicorn workers {workers or '—'}; master {master}; job worker "
                 f"{job_worker}. CPU time: {cpu}. Load average (1 min): "
                 f"{s['load']['before']:.1f} before, {s['load']['max']:.1f} at most, "
                 f"{s['load']['end']:.1f} at the end.")
    if s["server_errors"]:
        parts.append(f"Server log: {len(s['server_errors'])} error lines, first: "
                     + " | ".join(s["server_errors"][:3]))
    return "\n\n".join(parts)


def prepared_report(kind: str, prepared: Prepared) -> str:
    phases = ", ".join(f"{k} {v:.1f} s" for k, v in prepared.seconds.items())
    return (f"{kind} ({prepared.server}): {prepared.rows.get('customer', 0):,} customers, "
            f"{prepared.rows.get('contact', 0):,} contacts loaded in {sum(prepared.seconds.values()):.0f} s "
            f"({phases}).")


def report(args, prepared: dict[str, Prepared], runs: list[dict], table) -> str:
    parts = [f"Load benchmark: {', '.join(map(str, args.users))} users (think time {args.think} s, started "
             f"{args.spawn_rate:g}/s), {args.duration} s per run; gunicorn ({args.web_workers} workers, "
             "gunicorn.conf.py) and one job worker via scripts/serve-production.sh; locust on the same "
             "machine.",
             f"Machine: {machine()}. {datetime.now():%Y-%m-%d %H:%M}."]
    parts += [prepared_report(kind, p) for kind, p in prepared.items()]
    for summary in runs:
        parts += [f"### {run_title(summary)}", run_report(summary, table)]
    return "\n\n".join(parts) + "\n"


def server_version(kind: str, url: str) -> str:
    if kind == "sqlite":
        return f"SQLite {sqlite3.sqlite_version}"
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.connect() as connection:
        version = connection.scalar(text("SHOW server_version"))
    engine.dispose()
    return f"PostgreSQL {version}"


def main(argv=None) -> None:
    args = parse_args(argv)
    from bench import dataset
    from testing.postgres import PostgresCluster

    users = accounts(max(args.users))
    importer = "bench.importer@example.com"
    prepared: dict[str, Prepared] = {}
    runs: list[dict] = []
    for kind in args.db:
        folder = Path(tempfile.mkdtemp(prefix=f"cd-loadbench-{kind}-"))
        cluster = None
        try:
            if kind == "sqlite":
                base_url = f"sqlite:///{folder / 'base.db'}"
            else:
                cluster = PostgresCluster().start()
                base_url = cluster.create_database("desk_base")
            print(f"[{kind}] loading {args.customers:,} customers…", flush=True)
            prepared[kind], data = prepare(kind, base_url, args, users, importer)
            prepared[kind].server = server_version(kind, base_url)
            print(prepared_report(kind, prepared[kind]), flush=True)
            files = []
            for batch in range(1, 11):
                path = folder / f"import-{batch:02d}.csv"
                path.write_bytes(dataset.import_csv(dataset.import_rows(args.import_rows, batch)))
                files.append(str(path))
            new_people = [r for r in dataset.import_rows(4_000, batch=999) if r["kind"] == "person"]
            for count in args.users:
                for importing in args.imports:
                    plan = {"accounts": users[:count], "password": PASSWORD, "importer": {"email": importer},
                            "import_files": files, "import_rows": args.import_rows,
                            "new_people": [{"first_name": p["first_name"], "last_name": p["last_name"],
                                            "email": p["email"], "phone": p["primary_phone"]}
                                           for p in new_people],
                            **data}
                    print(f"[{kind}] {count} users, {'with' if importing else 'no'} import, "
                          f"{args.duration} s…", flush=True)
                    summary = one_run(kind, base_url, folder, cluster, args, plan, count, importing)
                    runs.append(summary)
                    print(f"\n### {run_title(summary)}\n\n{run_report(summary, text_table)}\n", flush=True)
        finally:
            if cluster is not None:
                cluster.stop()
            if args.keep:
                print(f"[{kind}] kept {folder}")
            else:
                shutil.rmtree(folder, ignore_errors=True)
    args.output.write_text("## Load benchmark\n\n" + report(args, prepared, runs, markdown_table))
    print(f"Markdown written to {args.output}")


if __name__ == "__main__":
    main()
