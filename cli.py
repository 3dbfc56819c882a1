"""`flask --app app …` commands for administration; `db …` comes from Flask-Migrate."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import click
from flask import Flask, current_app

from cli_accounts import reset_maintainer_password_command
from cli_backup import backup_cli
from cli_directory import directory_cli, tokens_cli
from cli_mail import mail_cli
from extensions import db
from jobs.worker import worker_command
from services.customers import SaveOptions
from services.demo import load_demo_data
from services.errors import FORM, DomainError, ValidationFailed
from services.operators import create_operator, ensure_maintainer
from services.reference_data import ensure_reference_data
from services.secrets import rotate_secrets
from services.transactions import unit_of_work


def _options() -> SaveOptions:
    return SaveOptions(phone_region=current_app.config["PHONE_DEFAULT_REGION"])


def _fail(exc: DomainError) -> NoReturn:
    """A refusal of the domain as a message on stderr and exit status 1, never a traceback."""
    errors = exc.errors if isinstance(exc, ValidationFailed) else {FORM: [str(exc)]}
    for field, messages in errors.items():
        for message in messages:
            click.echo(message if field == FORM else f"{field}: {message}", err=True)
    raise SystemExit(1)


def migration_scripts():
    """The migration scripts (Alembic's ScriptDirectory) of this app's migrations folder."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(current_app.extensions["migrate"].migrate.get_config())


def is_known_revision(revision: str) -> bool:
    from alembic.util import CommandError

    try:
        return migration_scripts().get_revision(revision) is not None
    except CommandError:
        return False


def migrate_when_behind() -> str | None:
    """Bring the database schema to the scripts' head when it is behind; None when it is at head
    already. The check is one SELECT of alembic_version, so a start at head takes no migration
    lock and runs no migration; `upgrade` (migrations/env.py) takes the lock when it must run."""
    from alembic.runtime.migration import MigrationContext
    from flask_migrate import upgrade

    scripts = migration_scripts()
    heads = set(scripts.get_heads())
    quiet = logging.getLogger("alembic.runtime.migration")
    level = quiet.level
    quiet.setLevel(logging.WARNING)  # not "Context impl SQLiteImpl." on every start
    try:
        with db.engine.connect() as connection:
            current = set(MigrationContext.configure(connection).get_current_heads())
    finally:
        quiet.setLevel(level)
    if current == heads:
        return None
    unknown = sorted(revision for revision in current if not is_known_revision(revision))
    if unknown:
        raise click.ClickException(
            f"The database is at revision {', '.join(unknown)}, which this version of Customer Desk does not "
            "know: a newer version migrated it. Run that version (or restore a backup made by this one).")
    upgrade()
    return ", ".join(sorted(heads))


@contextmanager
def writing() -> Iterator[None]:
    """A command's write: one unit of work, committed when the command's body ends; a refusal
    rolls everything back and ends the command with its message (`_fail`)."""
    try:
        with unit_of_work(db.session):
            yield
    except DomainError as exc:
        _fail(exc)


def register_cli(app: Flask) -> None:
    app.cli.add_command(directory_cli)
    app.cli.add_command(tokens_cli)
    app.cli.add_command(reset_maintainer_password_command)
    app.cli.add_command(worker_command)
    app.cli.add_command(backup_cli)
    app.cli.add_command(mail_cli)

    @app.cli.command("create-maintainer")
    @click.argument("email")
    @click.option("--first-name", default="First")
    @click.option("--last-name", default="Maintainer")
    @click.password_option(help="Asked for when not given (typed twice).")
    def create_maintainer_command(email, first_name, last_name, password):
        """Create a maintainer who can sign in with EMAIL."""
        from models.enums import OperatorRole

        with writing():
            create_operator(db.session, email=email, password=password, first_name=first_name,
                            last_name=last_name, role=OperatorRole.MAINTAINER)
        click.echo(f"Maintainer {email} created.")

    @app.cli.command("load-demo")
    def load_demo_command():
        """Load demo customers, contacts, operators and lookups into an empty database."""
        with writing():
            loaded = load_demo_data(db.session, _options())
        click.echo("Demo data loaded." if loaded else "Customers exist already: demo data not loaded.")

    @app.cli.command("rotate-encryption-key")
    @click.option("--old-key", "old_keys", multiple=True, required=True,
                  help="A key the stored secrets may still be encrypted with (repeatable).")
    def rotate_encryption_key_command(old_keys):
        """Re-encrypt every stored secret with the current ENCRYPTION_KEY.

        Run it with ENCRYPTION_KEY set to the new key and the previous one as --old-key, then
        keep running the app with the new key. Values are never printed."""
        try:
            with writing():
                count = rotate_secrets(db.session, current_app.config["ENCRYPTION_KEY"], list(old_keys))
        except ValueError as exc:  # a key that opens nothing: rolled back, nothing changed
            raise click.ClickException(str(exc)) from None
        click.echo(f"Re-encrypted {count} secret value(s) with the current key.")

    @app.cli.command("setup")
    @click.option("--demo/--no-demo", default=True, help="Load demo data into a new database.")
    @click.option("--schema-only", is_flag=True,
                  help="Only bring the schema up to date (what each production start runs).")
    def setup_command(demo, schema_only):
        """Prepare the database: migrate it when it is behind (not at all when at head), then
        reference rows, demo data when it is new, and a first maintainer when none exists
        (ADMIN_EMAIL / ADMIN_PASSWORD, or a generated password printed once). One unit of work
        after the migrations: when the maintainer is refused, nothing of the setup is kept."""
        from sqlalchemy import select

        from models import Operator

        migrated = migrate_when_behind()
        click.echo(f"Database schema brought up to date ({migrated})." if migrated
                   else "Database schema is up to date.")
        if schema_only:
            return
        with writing():
            is_new = db.session.scalar(select(Operator.id).limit(1)) is None
            ensure_reference_data(db.session)
            demo_loaded = demo and is_new and load_demo_data(db.session, _options())
            operator, generated = ensure_maintainer(
                db.session, os.environ.get("ADMIN_EMAIL"), os.environ.get("ADMIN_PASSWORD")
            )
        if demo_loaded:
            click.echo("New database: demo data loaded.")
        if generated:
            click.echo("=" * 64)
            click.echo(f"First maintainer: {operator.email}")
            click.echo(f"Password (shown only now): {generated}")
            click.echo("=" * 64)
        else:
            click.echo(f"Maintainer {operator.email} is ready.")
