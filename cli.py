"""`flask --app app …` commands for administration; `db …` comes from Flask-Migrate."""

from __future__ import annotations

import os

import click
from flask import Flask, current_app

from cli_directory import directory_cli, tokens_cli
from extensions import db
from services.customers import SaveOptions
from services.demo import load_demo_data
from services.errors import ValidationFailed
from services.operators import create_operator, ensure_maintainer
from services.reference_data import ensure_reference_data
from services.secrets import rotate_secrets


def _options() -> SaveOptions:
    return SaveOptions(phone_region=current_app.config["PHONE_DEFAULT_REGION"])


def _fail(exc: ValidationFailed) -> None:
    for field, messages in exc.errors.items():
        for message in messages:
            click.echo(f"{field}: {message}", err=True)
    raise SystemExit(1)


def register_cli(app: Flask) -> None:
    app.cli.add_command(directory_cli)
    app.cli.add_command(tokens_cli)

    @app.cli.command("create-maintainer")
    @click.argument("email")
    @click.option("--first-name", default="First")
    @click.option("--last-name", default="Maintainer")
    @click.password_option(help="Asked for when not given (typed twice).")
    def create_maintainer_command(email, first_name, last_name, password):
        """Create a maintainer who can sign in with EMAIL."""
        from models.enums import OperatorRole

        try:
            create_operator(db.session, email=email, password=password, first_name=first_name,
                            last_name=last_name, role=OperatorRole.MAINTAINER)
        except ValidationFailed as exc:
            _fail(exc)
        click.echo(f"Maintainer {email} created.")

    @app.cli.command("load-demo")
    def load_demo_command():
        """Load demo customers, contacts, operators and lookups into an empty database."""
        if load_demo_data(db.session, _options()):
            click.echo("Demo data loaded.")
        else:
            click.echo("Customers exist already: demo data not loaded.")

    @app.cli.command("rotate-encryption-key")
    @click.option("--old-key", "old_keys", multiple=True, required=True,
                  help="A key the stored secrets may still be encrypted with (repeatable).")
    def rotate_encryption_key_command(old_keys):
        """Re-encrypt every stored secret with the current ENCRYPTION_KEY.

        Run it with ENCRYPTION_KEY set to the new key and the previous one as --old-key, then
        keep running the app with the new key. Values are never printed."""
        try:
            count = rotate_secrets(db.session, current_app.config["ENCRYPTION_KEY"], list(old_keys))
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f"Re-encrypted {count} secret value(s) with the current key.")

    @app.cli.command("setup")
    @click.option("--demo/--no-demo", default=True, help="Load demo data into a new database.")
    def setup_command(demo):
        """Prepare a migrated database: reference rows, demo data when it is new, and a first
        maintainer (ADMIN_EMAIL / ADMIN_PASSWORD, or a generated password printed once)."""
        from sqlalchemy import select

        from models import Operator

        is_new = db.session.scalar(select(Operator.id).limit(1)) is None
        ensure_reference_data(db.session)
        if demo and is_new and load_demo_data(db.session, _options()):
            click.echo("New database: demo data loaded.")
        try:
            operator, generated = ensure_maintainer(
                db.session, os.environ.get("ADMIN_EMAIL"), os.environ.get("ADMIN_PASSWORD")
            )
        except ValidationFailed as exc:
            _fail(exc)
        if generated:
            click.echo("=" * 64)
            click.echo(f"First maintainer: {operator.email}")
            click.echo(f"Password (shown only now): {generated}")
            click.echo("=" * 64)
        else:
            click.echo(f"Maintainer {operator.email} is ready.")
