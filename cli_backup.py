"""`flask --app app backup …`: back up an installation to one archive, check one, restore one.

The work is services.backup's; this door finds the installation's parts from the app's
configuration and turns a refusal into a message and exit status 1, never a traceback.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup
from huey.storage import SqliteStorage

from extensions import db
from jobs.queue import queue_of
from services.backup import (
    BackupRefused,
    Installation,
    OpenedBackup,
    check_restorable,
    create_backup,
    database_name,
    describe,
    open_backup,
    prune_backups,
    restore_backup,
)

backup_cli = AppGroup("backup", help="Back up the database, the instance keys and the photos; restore them.")


def installation() -> Installation:
    """This app's parts as a backup sees them. The job queue's SQLite file is included when the
    queue is one (the default beside a SQLite database); on PostgreSQL it is in the database."""
    app = current_app
    queue = queue_of(app)
    queue_file = None
    if issubclass(queue.storage_class, SqliteStorage):
        queue_file = Path(queue.storage_kwargs["filename"])
    return Installation(engine=db.engine, instance_dir=Path(app.instance_path),
                        photo_dir=Path(app.config["PHOTO_DIR"]), queue_file=queue_file,
                        encryption_key=app.config["ENCRYPTION_KEY"], pg_bindir=os.environ.get("PG_BINDIR"))


def _head() -> str | None:
    from cli import migration_scripts  # cli registers these commands: imported when they run

    return migration_scripts().get_current_head()


@contextmanager
def refusals() -> Iterator[None]:
    try:
        yield
    except BackupRefused as exc:
        click.echo(str(exc), err=True)
        raise SystemExit(1) from None


@contextmanager
def opened(archive: Path) -> Iterator[OpenedBackup]:
    """The archive checked and unpacked in a private folder beside the instance (0700, removed after)."""
    folder = Path(current_app.instance_path)
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder, prefix=".restore-") as work:
        yield open_backup(archive, Path(work))


@backup_cli.command("create")
@click.option("--to", "target", type=click.Path(file_okay=False, path_type=Path), envvar="BACKUP_DIR",
              help="Folder for the archive (BACKUP_DIR; default: backups/ in the instance folder).")
@click.option("--keep", type=click.IntRange(min=1),
              help="Then delete all but the newest KEEP backups in that folder.")
def create_command(target: Path | None, keep: int | None) -> None:
    """Write one archive: a consistent copy of the database (safe while the desk runs), the job
    queue file, the instance keys and the photos. Created with mode 0600: it holds the
    encryption key, keep it as safe as the server."""
    target = target or Path(current_app.instance_path) / "backups"
    parts = installation()
    with refusals():
        archive = create_backup(parts, target)
    size = archive.stat().st_size / 1_000_000
    click.echo(f"Backup written: {archive} ({size:.1f} MB, readable by its owner only).")
    key_file = parts.instance_dir / "encryption_key"
    if not key_file.is_file() or key_file.read_text().strip() != parts.encryption_key.strip():
        click.echo("The encryption key comes from the environment (ENCRYPTION_KEY) and is not in the backup: "
                   "keep it with the backups — without it the stored passwords cannot be read.")
    if keep:
        for old in prune_backups(target, keep):
            click.echo(f"Deleted the older backup {old.name}.")


@backup_cli.command("check")
@click.argument("archive", type=click.Path(dir_okay=False, path_type=Path))
def check_command(archive: Path) -> None:
    """Read ARCHIVE whole and check every file in it against its manifest, changing nothing."""
    with refusals(), opened(archive) as backup:
        click.echo(f"{archive.name} is a whole backup, {describe(backup.manifest)}.")


@backup_cli.command("restore")
@click.argument("archive", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--yes", is_flag=True, help="Do not ask before replacing the current data.")
def restore_command(archive: Path, yes: bool) -> None:
    """Put ARCHIVE back: the database, the job queue file, the instance keys and the photos.
    Stop the web server and the workers first — nobody may write while it runs."""
    parts = installation()
    with refusals(), opened(archive) as backup:
        from cli import is_known_revision

        check_restorable(backup, parts, is_known_revision)
        click.echo(f"{archive.name}: {describe(backup.manifest)}.")
        if not yes:
            click.confirm(f"This replaces the database {database_name(parts.engine)}, the photos in "
                          f"{parts.photo_dir} and the instance keys with the backup's. Stop the web server "
                          "and the workers first: nobody may write while it runs. Restore now?", abort=True)
        outcome = restore_backup(backup, parts)
    keys = f", {' and '.join(outcome.secret_files)}" if outcome.secret_files else ""
    click.echo(f"Restored: the database (revision {outcome.revision or 'none'}), "
               f"{outcome.photos} photo file(s){keys}.")
    if outcome.revision != _head():
        click.echo("The backup's schema is older than this version's: `flask --app app setup` "
                   "(or `make run`) brings it up to date.")
    if not outcome.key_matches:
        click.echo("Warning: the stored passwords were encrypted with another key than the ENCRYPTION_KEY "
                   "in effect here. Set ENCRYPTION_KEY to the key of the backup's installation before "
                   "starting, or they cannot be read.", err=True)
