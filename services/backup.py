"""Backups of one Customer Desk installation, and their restore.

One archive (`customer-desk-backup-<UTC time>.tar.gz`, created with mode 0600) holds what a new
machine needs to carry on:

- `database/customer_desk.sqlite3` — SQLite: a consistent copy of the live file made through
  sqlite3's backup API (safe while the desk runs, WAL included; a plain file copy is not), or
  `database/customer_desk.pgdump` — PostgreSQL: pg_dump's custom format, by a pg_dump at least
  as new as the server (the job queue's tables are in it);
- `queue/jobs.sqlite3` — the job queue when it is a SQLite file of its own (copied the same way);
- `instance/encryption_key`, `instance/secret_key` — the instance secrets when they are files
  (APP_ENV=development; in production they come from the environment and are not in the archive);
- `photos/…` — the photo folder (PHOTO_DIR);
- `manifest.json`, the last member: format, time, database kind, Alembic revision, which secrets
  are included, a fingerprint of the encryption key in effect, and the size and SHA-256 of every
  other member.

A restore unpacks into a private folder and checks every member against the manifest before it
touches anything: a file that is not such a backup, or a damaged one, is refused with a message
(`BackupRefused`). The archive holds the encryption key, so it is as secret as the server.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import re
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from glob import glob
from pathlib import Path
from typing import IO, Any

from sqlalchemy import text
from sqlalchemy.engine import Engine, make_url

from services.errors import DomainError

FORMAT = "customer-desk-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SQLITE_MEMBER = "database/customer_desk.sqlite3"
PGDUMP_MEMBER = "database/customer_desk.pgdump"
QUEUE_MEMBER = "queue/jobs.sqlite3"
SECRET_FILES = ("encryption_key", "secret_key")
ARCHIVE_NAME = re.compile(r"customer-desk-backup-(\d{8}T\d{6}Z)(?:-(\d+))?\.tar\.gz")
# The files services.photos writes: a photo and its thumbnail.
STORED_PHOTO_FILE = re.compile(r"[0-9a-f]{32}(_thumb)?\.(png|jpg|webp)")
CHUNK = 1024 * 1024
# What unpacking a backup leaves free on its disk at least (it unpacks beside the live database:
# a damaged or hostile archive must not fill the disk under the running desk).
FREE_RESERVE = 512 * 1024 * 1024
PG_TIMEOUT_SECONDS = 6 * 3600
RESTORE_LOCK_TIMEOUT_MS = 20_000


class BackupRefused(DomainError):
    """A backup or restore that cannot be done; the message says why and what to do."""


@dataclass(frozen=True)
class Installation:
    """Where one installation keeps what a backup holds. `engine` is the database's (its URL
    carries the absolute SQLite path); `queue_file` is the job queue's SQLite file, None when the
    queue lives in the PostgreSQL database (then it is in the dump) or elsewhere; `encryption_key`
    is the key in effect; `pg_bindir` a folder to take pg_dump / pg_restore from first."""

    engine: Engine
    instance_dir: Path
    photo_dir: Path
    queue_file: Path | None
    encryption_key: str
    pg_bindir: str | None = None

    @property
    def kind(self) -> str:
        return "postgresql" if self.engine.dialect.name == "postgresql" else "sqlite"

    @property
    def sqlite_path(self) -> Path:
        database = self.engine.url.database
        if self.kind != "sqlite" or not database or database == ":memory:" or database.startswith("file:"):
            raise BackupRefused("Only a SQLite database in a file or a PostgreSQL database can be backed up.")
        return Path(database)


@dataclass
class Manifest:
    """What an archive says about itself (its last member)."""

    created_at: str
    database: str
    revision: str | None
    key_fingerprint: str
    secret_files: list[str]
    files: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def photos(self) -> list[str]:
        return sorted(name for name in self.files if name.startswith("photos/"))

    def as_json(self) -> bytes:
        return json.dumps({"format": FORMAT, "format_version": FORMAT_VERSION, "created_at": self.created_at,
                           "database": self.database, "revision": self.revision,
                           "key_fingerprint": self.key_fingerprint, "secret_files": self.secret_files,
                           "files": self.files}, indent=2, sort_keys=True).encode()


@dataclass
class OpenedBackup:
    """A checked archive unpacked in `root` (a private folder that the caller removes)."""

    archive: Path
    root: Path
    manifest: Manifest

    def path(self, member: str) -> Path:
        return self.root / member


def key_fingerprint(key: str) -> str:
    """A short fingerprint of an encryption key: tells whether two keys are the same without
    saying anything about either."""
    return hashlib.sha256(b"customer-desk encryption key:" + key.strip().encode()).hexdigest()[:16]


def _now_utc() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


# -- creating ------------------------------------------------------------------------------


class _HashingReader:
    """A file read once for the archive, hashed on the way (the hash is of what was archived)."""

    def __init__(self, handle: IO[bytes]):
        self.handle = handle
        self.sha256 = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self.handle.read(size)
        self.sha256.update(data)
        return data


class _ArchiveWriter:
    def __init__(self, tar: tarfile.TarFile, mtime: float):
        self.tar = tar
        self.mtime = mtime
        self.files: dict[str, dict[str, Any]] = {}

    def _info(self, name: str, size: int) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.size, info.mode, info.mtime = size, 0o600, self.mtime
        return info

    def add_file(self, name: str, path: Path) -> None:
        with path.open("rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            reader = _HashingReader(handle)
            self.tar.addfile(self._info(name, size), reader)  # type: ignore[arg-type]
        self.files[name] = {"size": size, "sha256": reader.sha256.hexdigest()}

    def add_bytes(self, name: str, data: bytes) -> None:
        import io

        self.tar.addfile(self._info(name, len(data)), io.BytesIO(data))
        self.files[name] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def _copy_sqlite(source: Path, target: Path, timeout: float = 30.0) -> None:
    """A consistent copy of a live SQLite file: one backup step under a read transaction (in WAL
    mode writers go on meanwhile), checked, then made a standalone file (no -wal beside it)."""
    if not source.is_file():
        raise BackupRefused(f"The database file {source} does not exist.")
    src = sqlite3.connect(source, timeout=timeout)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
        dst.execute("PRAGMA journal_mode=DELETE")
        (check,) = dst.execute("PRAGMA quick_check").fetchone()
        if check != "ok":
            raise BackupRefused(f"The copy of {source.name} failed its check ({check}); the database "
                                "may be damaged: run `sqlite3 FILE 'PRAGMA integrity_check'`.")
    finally:
        dst.close()
        src.close()


def _sqlite_revision(path: Path) -> str | None:
    connection = sqlite3.connect(path)
    try:
        row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.DatabaseError:
        return None
    finally:
        connection.close()
    return row[0] if row else None


def _engine_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        try:
            row = connection.execute(text("SELECT version_num FROM alembic_version")).first()
        except Exception:  # no alembic_version table: a database never migrated
            return None
    return row[0] if row else None


def _tool_major(tool: Path) -> int | None:
    try:
        out = subprocess.run([str(tool), "--version"], capture_output=True, text=True, timeout=30).stdout
    except OSError:
        return None
    match = re.search(r"(\d+)(?:\.\d+)?", out)
    return int(match.group(1)) if match else None


def postgres_tool(name: str, server_major: int, preferred: str | None = None) -> Path:
    """pg_dump / pg_restore at least as new as the server (an older one refuses the server's
    dump). Looked for in `preferred` (PG_BINDIR), the server's own version folder of Debian's
    packages, any newer one, then PATH — the way testing/postgres.py finds initdb."""
    folders = [preferred] if preferred else []
    folders.append(f"/usr/lib/postgresql/{server_major}/bin")
    folders += sorted(glob("/usr/lib/postgresql/*/bin"), key=lambda f: int(re.sub(r"\D", "", f) or 0),
                      reverse=True)
    found = shutil.which(name)
    if found:
        folders.append(str(Path(found).resolve().parent))
    seen = []
    for folder in folders:
        tool = Path(folder) / name
        if not tool.is_file() or tool in seen:
            continue
        seen.append(tool)
        major = _tool_major(tool)
        if major is not None and major >= server_major:
            return tool
    raise BackupRefused(f"{name} of PostgreSQL {server_major} or newer is needed and was not found: install "
                        f"Debian's postgresql-client-{server_major} (or set PG_BINDIR to its bin folder).")


def _libpq(engine: Engine) -> tuple[str, dict[str, str]]:
    """The database as a libpq URI for pg_dump / pg_restore, its password in the environment
    (never on a command line that `ps` shows)."""
    url = engine.url
    env = {**os.environ, "PGCONNECT_TIMEOUT": "15"}
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    uri = url.set(drivername="postgresql", password=None).render_as_string(hide_password=False)
    return uri, env


def _server_major(engine: Engine) -> int:
    with engine.connect() as connection:
        number = int(connection.execute(text("SHOW server_version_num")).scalar_one())
    return number // 10000


def _tool_failed(name: str, result: subprocess.CompletedProcess) -> str:
    lines = [line for line in (result.stderr or "").splitlines() if line.strip()]
    return f"{name} failed: " + (" / ".join(lines[-3:]) if lines else f"exit status {result.returncode}")


def _pg_dump(installation: Installation, target: Path) -> None:
    tool = postgres_tool("pg_dump", _server_major(installation.engine), installation.pg_bindir)
    uri, env = _libpq(installation.engine)
    result = subprocess.run([str(tool), "--format=custom", "--file", str(target), "--dbname", uri],
                            capture_output=True, text=True, env=env, timeout=PG_TIMEOUT_SECONDS)
    if result.returncode != 0:
        raise BackupRefused(_tool_failed("pg_dump", result))


def _photo_files(photo_dir: Path) -> Iterator[tuple[str, Path]]:
    if not photo_dir.is_dir():
        return
    for path in sorted(photo_dir.rglob("*")):
        if path.is_file() and not path.is_symlink():
            yield "photos/" + path.relative_to(photo_dir).as_posix(), path


def _archive_path(target_dir: Path, when: datetime) -> Path:
    stem = f"customer-desk-backup-{when:%Y%m%dT%H%M%SZ}"
    path, number = target_dir / f"{stem}.tar.gz", 1
    while path.exists():
        number += 1
        path = target_dir / f"{stem}-{number}.tar.gz"
    return path


def create_backup(installation: Installation, target_dir: Path, *, now: datetime | None = None) -> Path:
    """Write one archive of `installation` into `target_dir` (made 0700 when new) and return its
    path. The archive is created with mode 0600 under a temporary name and renamed when complete,
    so a file with the final name is always whole. Raises BackupRefused."""
    when = now or _now_utc()
    target_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    final = _archive_path(target_dir, when)
    partial = final.with_name(f".{final.name}.partial")
    with tempfile.TemporaryDirectory(dir=target_dir, prefix=".backup-") as work_name:
        work = Path(work_name)
        if installation.kind == "sqlite":
            database = work / "database.sqlite3"
            _copy_sqlite(installation.sqlite_path, database)
            revision, database_member = _sqlite_revision(database), SQLITE_MEMBER
        else:
            database = work / "database.pgdump"
            revision = _engine_revision(installation.engine)
            _pg_dump(installation, database)
            database_member = PGDUMP_MEMBER
        queue = None
        if installation.queue_file is not None and installation.queue_file.is_file():
            queue = work / "jobs.sqlite3"
            _copy_sqlite(installation.queue_file, queue)

        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(descriptor, "wb") as raw:
                with tarfile.open(fileobj=raw, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
                    writer = _ArchiveWriter(tar, when.timestamp())
                    writer.add_file(database_member, database)
                    if queue is not None:
                        writer.add_file(QUEUE_MEMBER, queue)
                    secrets = []
                    for name in SECRET_FILES:
                        path = installation.instance_dir / name
                        if path.is_file():
                            writer.add_bytes(f"instance/{name}", path.read_bytes())
                            secrets.append(name)
                    for member, path in _photo_files(installation.photo_dir):
                        writer.add_file(member, path)
                    manifest = Manifest(created_at=when.isoformat(), database=installation.kind,
                                        revision=revision,
                                        key_fingerprint=key_fingerprint(installation.encryption_key),
                                        secret_files=secrets, files=writer.files)
                    writer.add_bytes(MANIFEST, manifest.as_json())
                raw.flush()
                os.fsync(raw.fileno())
            os.replace(partial, final)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
    return final


def prune_backups(target_dir: Path, keep: int) -> list[Path]:
    """Delete all but the newest `keep` archives this module named in `target_dir`; the deleted."""
    def age(path: Path) -> tuple[str, int]:  # the time in the name, then the -2, -3 of the same second
        match = ARCHIVE_NAME.fullmatch(path.name)
        assert match is not None
        return match.group(1), int(match.group(2) or 1)

    archives = sorted((p for p in target_dir.iterdir() if ARCHIVE_NAME.fullmatch(p.name)), key=age,
                      reverse=True)
    for old in archives[keep:]:
        old.unlink(missing_ok=True)
    return archives[keep:]


# -- reading and checking --------------------------------------------------------------------


def _damaged(archive: Path, detail: str) -> BackupRefused:
    return BackupRefused(f"The backup {archive.name} is damaged ({detail}); nothing was restored. "
                         "Use another copy of it, or an older backup.")


def _not_a_backup(archive: Path, detail: str) -> BackupRefused:
    return BackupRefused(f"{archive.name} is not a Customer Desk backup ({detail}); nothing was restored.")


def _allowed_member(name: str) -> bool:
    if name.startswith("/") or "\\" in name or posixpath.normpath(name) != name or ".." in name.split("/"):
        return False
    if name in (MANIFEST, SQLITE_MEMBER, PGDUMP_MEMBER, QUEUE_MEMBER):
        return True
    if name in {f"instance/{secret}" for secret in SECRET_FILES}:
        return True
    return name.startswith("photos/") and len(name) > len("photos/")


def _read_manifest(archive: Path, path: Path) -> Manifest:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise _damaged(archive, "its manifest cannot be read") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise _not_a_backup(archive, "its manifest is not ours")
    if data.get("format_version") != FORMAT_VERSION:
        raise BackupRefused(f"{archive.name} is a backup of format {data.get('format_version')!r}, which "
                            "this version of Customer Desk does not read; nothing was restored.")
    try:
        manifest = Manifest(created_at=str(data["created_at"]), database=str(data["database"]),
                            revision=data["revision"], key_fingerprint=str(data["key_fingerprint"]),
                            secret_files=list(data["secret_files"]), files=dict(data["files"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise _damaged(archive, "its manifest is incomplete") from exc
    if manifest.database not in ("sqlite", "postgresql"):
        raise _damaged(archive, "its manifest names no database")
    return manifest


def open_backup(archive: Path, work: Path) -> OpenedBackup:
    """Unpack `archive` into the empty private folder `work` and check it whole: every member is
    one a backup has, lies inside `work`, and has the size and SHA-256 its manifest says; the
    database copy is present. Raises BackupRefused (not a backup, damaged, unknown format)."""
    if not archive.is_file():
        raise BackupRefused(f"There is no backup file {archive}.")
    sums: dict[str, tuple[int, str]] = {}
    try:
        with tarfile.open(archive, mode="r:gz") as tar:
            for member in tar:
                if not member.isfile() or not _allowed_member(member.name):
                    raise _not_a_backup(archive, f"it holds {member.name!r}")
                if member.name in sums:
                    raise _damaged(archive, f"{member.name} is in it twice")
                free = shutil.disk_usage(work).free
                if member.size > free - FREE_RESERVE:
                    raise BackupRefused(
                        f"{archive}: unpacking {member.name} ({member.size:,} bytes) would leave less than "
                        f"{FREE_RESERVE // 2**20} MB free on the disk of {work}. Make room, or copy the "
                        "backup to a machine with more space.")
                source = tar.extractfile(member)
                assert source is not None  # a regular file
                target = work / member.name
                target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                digest, size = hashlib.sha256(), 0
                with source, open(target, "xb") as out:
                    os.chmod(target, 0o600)
                    while chunk := source.read(CHUNK):
                        digest.update(chunk)
                        size += len(chunk)
                        out.write(chunk)
                sums[member.name] = (size, digest.hexdigest())
    except BackupRefused:
        raise
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        if not sums:
            raise _not_a_backup(archive, "not a readable archive") from exc
        raise _damaged(archive, "the archive breaks off or is corrupt") from exc
    if MANIFEST not in sums:
        if SQLITE_MEMBER in sums or PGDUMP_MEMBER in sums:
            raise _damaged(archive, "its manifest is missing")
        raise _not_a_backup(archive, "it has no manifest")
    manifest = _read_manifest(archive, work / MANIFEST)
    del sums[MANIFEST]
    for name, expected in manifest.files.items():
        if name not in sums:
            raise _damaged(archive, f"{name} is missing")
        size, sha256 = sums.pop(name)
        if not isinstance(expected, dict) or expected.get("size") != size or expected.get("sha256") != sha256:
            raise _damaged(archive, f"{name} does not match its checksum")
    if sums:
        raise _damaged(archive, f"{sorted(sums)[0]} is not in its manifest")
    database_member = SQLITE_MEMBER if manifest.database == "sqlite" else PGDUMP_MEMBER
    if database_member not in manifest.files:
        raise _damaged(archive, "the database copy is missing")
    return OpenedBackup(archive=archive, root=work, manifest=manifest)


# -- restoring -------------------------------------------------------------------------------


@dataclass
class RestoreOutcome:
    """What a restore put back, and whether the key in effect opens the restored secrets."""

    revision: str | None
    photos: int
    secret_files: list[str]
    key_matches: bool


def check_restorable(backup: OpenedBackup, installation: Installation,
                     is_known_revision: Callable[[str], bool]) -> None:
    """Refuse a backup this installation cannot take: another kind of database, or a schema
    revision this version of the code does not know (a backup made by a newer version)."""
    manifest = backup.manifest
    if manifest.database != installation.kind:
        names = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
        raise BackupRefused(f"{backup.archive.name} is a backup of a {names[manifest.database]} database, "
                            f"but this installation uses {names[installation.kind]} (DATABASE_URL); nothing "
                            "was restored.")
    if manifest.revision and not is_known_revision(manifest.revision):
        raise BackupRefused(f"{backup.archive.name} was made by a newer version of Customer Desk (database "
                            f"revision {manifest.revision}); install that version first. Nothing was "
                            "restored.")


def _restore_sqlite(copy: Path, live: Path, timeout: float = 60.0) -> None:
    """Write the copy into the live file through the backup API: the file keeps its identity,
    -wal and -shm stay consistent, and a connection that is still open sees the restored pages
    (a file replaced under it would not be)."""
    live.parent.mkdir(parents=True, exist_ok=True)
    src = sqlite3.connect(copy)
    dst = sqlite3.connect(live, timeout=timeout)
    try:
        (check,) = src.execute("PRAGMA quick_check").fetchone()
        if check != "ok":
            raise BackupRefused(f"The database copy in the backup failed its check ({check}); nothing was "
                                "restored.")
        src.backup(dst)
    finally:
        dst.close()
        src.close()


def _pg_restore(installation: Installation, dump: Path) -> None:
    """pg_restore in one transaction: the database is as in the backup, or — on any error — as
    it was. --clean --if-exists drops what the dump recreates; ownership and grants are the
    connecting role's (the dump may come from a server with other roles)."""
    tool = postgres_tool("pg_restore", _server_major(installation.engine), installation.pg_bindir)
    uri, env = _libpq(installation.engine)
    # A process still connected holds locks on the tables: give up after a while, never hang.
    env["PGOPTIONS"] = f"{env.get('PGOPTIONS', '')} -c lock_timeout={RESTORE_LOCK_TIMEOUT_MS}".strip()
    listing = subprocess.run([str(tool), "--list", str(dump)], capture_output=True, text=True, env=env,
                             timeout=600)
    if listing.returncode != 0:
        raise BackupRefused("The database copy in the backup cannot be read by pg_restore; nothing was "
                            "restored.")
    result = subprocess.run([str(tool), "--clean", "--if-exists", "--no-owner", "--no-privileges",
                             "--single-transaction", "--exit-on-error", "--dbname", uri, str(dump)],
                            capture_output=True, text=True, env=env, timeout=PG_TIMEOUT_SECONDS)
    if result.returncode != 0:
        if "lock timeout" in (result.stderr or ""):
            raise BackupRefused("The database is in use: stop the web server and the workers, then restore "
                                "again. The database was left as it was.")
        raise BackupRefused(_tool_failed("pg_restore", result) + " — the database was left as it was.")


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.restoring")
    temporary.unlink(missing_ok=True)
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(data)
    os.replace(temporary, path)


def _restore_photos(backup: OpenedBackup, photo_dir: Path) -> int:
    """Make the photo folder hold exactly the backup's photos: theirs written, others removed."""
    photo_dir.mkdir(parents=True, exist_ok=True)
    wanted = {name[len("photos/"):] for name in backup.manifest.photos}
    for relative in sorted(wanted):
        target = photo_dir / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(backup.path(f"photos/{relative}"), target)
    for path in photo_dir.iterdir():
        # Only what the photo service names is removed: a folder shared by mistake keeps the rest.
        if STORED_PHOTO_FILE.fullmatch(path.name) and path.name not in wanted and path.is_file():
            path.unlink()
    return len(wanted)


def restore_backup(backup: OpenedBackup, installation: Installation) -> RestoreOutcome:
    """Put an opened backup back: the database first (if it fails, nothing else is touched), then
    the job queue file, the instance secrets and the photo folder. Nobody may write meanwhile:
    the web server and the workers are stopped (SQLite would otherwise get their writes on top;
    PostgreSQL waits for their locks). Raises BackupRefused; the caller checked it first
    (`check_restorable`)."""
    manifest = backup.manifest
    installation.engine.dispose()
    if manifest.database == "sqlite":
        _restore_sqlite(backup.path(SQLITE_MEMBER), installation.sqlite_path)
    else:
        _pg_restore(installation, backup.path(PGDUMP_MEMBER))
    installation.engine.dispose()
    if QUEUE_MEMBER in manifest.files and installation.queue_file is not None:
        _restore_sqlite(backup.path(QUEUE_MEMBER), installation.queue_file)

    key_file = installation.instance_dir / "encryption_key"
    key_from_file = key_file.is_file() and key_file.read_text().strip() == installation.encryption_key.strip()
    for name in manifest.secret_files:
        _write_private(installation.instance_dir / name, backup.path(f"instance/{name}").read_bytes())
    # The key in effect after a restart: the restored file's when the key came from that file,
    # otherwise (ENCRYPTION_KEY in the environment) the same as now.
    key = installation.encryption_key
    if key_from_file and "encryption_key" in manifest.secret_files:
        key = backup.path("instance/encryption_key").read_text()
    photos = _restore_photos(backup, installation.photo_dir)
    return RestoreOutcome(revision=manifest.revision, photos=photos, secret_files=list(manifest.secret_files),
                          key_matches=key_fingerprint(key) == manifest.key_fingerprint)


def describe(manifest: Manifest) -> str:
    """One line about a backup for a person."""
    names = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
    keys = " and ".join(manifest.secret_files) or "no instance keys"
    return (f"made {manifest.created_at}: {names[manifest.database]} database at revision "
            f"{manifest.revision or 'none'}, {len(manifest.photos)} photo file(s), {keys}")


def database_name(engine: Engine) -> str:
    """The database for a message: never its password."""
    return make_url(str(engine.url)).render_as_string(hide_password=True)
