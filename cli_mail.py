"""`flask --app app mail …`: the intake mailboxes from cron, a systemd timer or by hand."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

from extensions import db
from services.pop3_reader import ReadRules, fetch_all

mail_cli = AppGroup("mail", help="Mail of requests by e-mail.")


@mail_cli.command("fetch")
@click.option("--mailbox", default=None,
              help='Only this mailbox: "builtin", or "customer:<id>" for a customer\'s own.')
@click.option("--verbose", "-v", is_flag=True, help="Say each mail as it is read and decided.")
def fetch_command(mailbox, verbose):
    """Read the intake mailboxes now, as the worker does each minute: each mail becomes a request,
    a comment, or is held or refused; it is deleted from the mailbox only after that is saved.
    Safe to run beside the workers. Exits 1 when a mailbox could not be read."""
    progress = (lambda line: click.echo(line)) if verbose else None
    reports = fetch_all(db.session, current_app.extensions["secret_box"], ReadRules.of(current_app.config),
                        only=mailbox, progress=progress)
    if not reports:
        click.echo("No intake mailbox to read" + (f" named {mailbox!r}." if mailbox else
                   ": set the built-in POP3 mailbox in the global settings, or a customer's own "
                   "with requests by e-mail on."))
    for report in reports:
        click.echo(report.summary(), err=report.error is not None)
    if any(report.error for report in reports):
        raise SystemExit(1)
