"""Starting the desk: hosts that start at once, a start with nothing to migrate, `make run`'s processes.

Each test runs the real commands as separate processes (`flask db upgrade`, `flask setup`,
scripts/run.sh) on an empty PostgreSQL database of its own and on a SQLite file of its own.
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import psycopg
import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text

from testing.postgres import free_port
from tests.conftest import ENCRYPTION_KEY
from tests.job_fixtures import wait_for

ROOT = Path(__file__).resolve().parent.parent
MIGRATION_LOCK_KEY = 7_406_312_015  # migrations/env.py


def head_revision() -> str:
    config = Config(str(ROOT / "migrations" / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head
    return head


@pytest.fixture(params=["sqlite", "postgres"])
def empty_database(request, tmp_path) -> str:
    """The URL of an empty database of this test's own."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'desk.db'}"
    return request.getfixturevalue("postgres_cluster").create_database(f"startup_{uuid.uuid4().hex[:12]}")


def environment(url: str, folder: Path, **extra: str) -> dict[str, str]:
    """What a host's service would have: its database, keys, and folders of the test's own."""
    env = {**os.environ, "DATABASE_URL": url, "SECRET_KEY": "startup-test-secret-key",
           "ENCRYPTION_KEY": ENCRYPTION_KEY, "PHOTO_DIR": str(folder / "photos"),
           "JOB_QUEUE_URL": f"sqlite:///{folder / 'jobs.sqlite3'}" if url.startswith("sqlite") else "",
           "ADMIN_EMAIL": "", "ADMIN_PASSWORD": "", "LOG_FORMAT": "text", **extra}
    env.pop("FLASK_APP", None)
    return env


def flask(*args: str) -> list[str]:
    return [sys.executable, "-m", "flask", "--app", "app", *args]


def revision_of(url: str) -> str | None:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            if not inspect(connection).has_table("alembic_version"):
                return None
            return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    finally:
        engine.dispose()


def test_two_hosts_migrating_an_empty_database_at_once_both_succeed(empty_database, tmp_path):
    env = environment(empty_database, tmp_path)
    hosts = [subprocess.Popen(flask("db", "upgrade"), cwd=ROOT, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outputs = [host.communicate(timeout=240)[0] for host in hosts]
    for host, output in zip(hosts, outputs, strict=True):
        assert host.returncode == 0, output
        assert "Traceback" not in output, output
    assert revision_of(empty_database) == head_revision()
    engine = create_engine(empty_database)
    try:
        assert {"customer", "operator", "audit_event"} <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


class MigrationLockHeld:
    """Hold the migration lock of migrations/env.py as a host that is migrating would: anything
    that tries to migrate meanwhile waits for it."""

    def __init__(self, url: str):
        self.url = url

    def __enter__(self):
        if self.url.startswith("sqlite"):
            self.handle = open(f"{self.url.removeprefix('sqlite:///')}.migrate-lock", "a")
            fcntl.flock(self.handle, fcntl.LOCK_EX)
        else:
            dsn = self.url.replace("postgresql+psycopg://", "postgresql://")
            self.handle = psycopg.connect(dsn, autocommit=True)
            self.handle.execute(f"SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})")
        return self

    def __exit__(self, *exc):
        self.handle.close()  # ends the flock / the session that holds the advisory lock


def test_setup_migrates_a_new_database_once_and_a_start_at_head_does_not_migrate(empty_database, tmp_path):
    env = environment(empty_database, tmp_path)
    first = subprocess.run(flask("setup", "--no-demo"), cwd=ROOT, env=env, capture_output=True, text=True,
                           timeout=240)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "Database schema brought up to date" in first.stdout
    assert "First maintainer: admin@example.com" in first.stdout
    assert revision_of(empty_database) == head_revision()

    # Another host holds the migration lock: a start that tried to migrate would wait for it.
    with MigrationLockHeld(empty_database):
        second = subprocess.run(flask("setup", "--no-demo"), cwd=ROOT, env=env, capture_output=True,
                                text=True, timeout=90)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "Database schema is up to date." in second.stdout
    assert "Password" not in second.stdout and "admin@example.com is ready" in second.stdout


def test_make_run_serves_pages_and_runs_a_job_worker_and_ctrl_c_stops_both(tmp_path):
    url = f"sqlite:///{tmp_path / 'desk.db'}"
    port = free_port()
    env = environment(url, tmp_path, PORT=str(port), SETUP_ARGS="--no-demo")
    log = tmp_path / "run.log"
    with open(log, "wb") as out:
        script = subprocess.Popen(["bash", "scripts/run.sh"], cwd=ROOT, env=env, stdout=out,
                                  stderr=subprocess.STDOUT, start_new_session=True)
    try:
        def page() -> bool:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=5) as response:
                    return response.status == 200
            except OSError:
                return False

        wait_for(page, timeout=120, interval=0.5, what="the web server of scripts/run.sh")
        children = subprocess.run(["pgrep", "-P", str(script.pid), "-a"], capture_output=True,
                                  text=True).stdout
        assert " worker " in children and " run " in children, children
        pids = [int(line.split()[0]) for line in children.splitlines()]

        os.killpg(script.pid, signal.SIGINT)  # what Ctrl-C in the terminal sends
        assert script.wait(60) in (0, 130)
        time.sleep(0.2)
        for pid in pids:
            assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
    finally:
        if script.poll() is None:
            os.killpg(script.pid, signal.SIGKILL)
            script.wait(10)
    assert "Traceback" not in log.read_text(errors="replace")
