"""A throwaway PostgreSQL cluster: initdb into a temporary folder, 127.0.0.1, a free port.

Uses the installed server binaries (Debian's postgresql package; `make test` installs it).
initdb refuses to run as root, so as root the cluster belongs to the `postgres` system user.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path


class PostgresUnavailable(RuntimeError):
    """The server binaries are missing or the cluster did not start; the message says why."""


def _bindir() -> Path:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for candidate in candidates:
        if (Path(candidate) / "initdb").exists():
            return Path(candidate)
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    raise PostgresUnavailable(
        "PostgreSQL server binaries (initdb, pg_ctl) not found: install Debian's postgresql "
        "package (make test does this when run as root)."
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgresCluster:
    """Start with `start()`, use `url(dbname)`, `create_database(name)`; `stop()` removes it,
    unless the cluster lives in a folder given as `root` (the benchmarks' kept registries): that
    one is only stopped, and a later `start()` serves the same databases again."""

    def __init__(self, root: Path | None = None, settings: dict[str, str] | None = None) -> None:
        self.bindir = _bindir()
        self.port = free_port()
        self.kept = root is not None
        if root is not None:
            root.mkdir(parents=True, exist_ok=True)
        self.root = root if root is not None else Path(tempfile.mkdtemp(prefix="cd-pg-"))
        self.datadir = self.root / "data"
        self.settings = settings or {}
        self.user = None
        if os.geteuid() == 0:
            try:
                self.user = pwd.getpwnam("postgres")
            except KeyError as exc:
                raise PostgresUnavailable("Running as root needs the 'postgres' system user.") from exc
            os.chown(self.root, self.user.pw_uid, self.user.pw_gid)
        self.root.chmod(0o755)

    def _run(self, *args: str) -> subprocess.CompletedProcess:
        command = [str(a) for a in args]
        if self.user is not None:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise PostgresUnavailable(
                f"{' '.join(command)} failed ({result.returncode}): {result.stderr or result.stdout}"
            )
        return result

    def start(self) -> PostgresCluster:
        if not (self.datadir / "PG_VERSION").exists():
            self._run(self.bindir / "initdb", "-D", self.datadir, "-U", "postgres", "--auth=trust",
                      "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync")
        options = (f"-p {self.port} -h 127.0.0.1 -k {self.root} -F "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                   "-c max_connections=200"
                   + "".join(f" -c {name}={value}" for name, value in self.settings.items()))
        self._run(self.bindir / "pg_ctl", "-D", self.datadir, "-o", options,
                  "-l", self.root / "server.log", "-w", "-t", "60", "start")
        return self

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres",
                             autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        try:
            # A kept cluster shuts down cleanly: its next start then needs no recovery.
            mode = "fast" if self.kept else "immediate"
            self._run(self.bindir / "pg_ctl", "-D", self.datadir, "-m", mode, "-w", "stop")
        except PostgresUnavailable:
            pass
        finally:
            if not self.kept:
                shutil.rmtree(self.root, ignore_errors=True)
