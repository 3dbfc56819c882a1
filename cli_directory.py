"""`flask --app app directory …` (directory imports from cron or a systemd timer) and
`flask --app app tokens …` (API tokens for scripts)."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import select

from extensions import db
from jobs import enqueue_after_commit
from jobs.directory import IMPORT
from models import DirectorySource
from models.enums import SyncRunStatus
from services.customers import SaveOptions
from services.directory.pipeline import run_queued
from services.directory.runs import queue_run
from services.directory.targets import change_text
from services.errors import DomainError, ValidationFailed
from services.transactions import unit_of_work

directory_cli = AppGroup("directory", help="Directory (AD/LDAP) sources and imports.")


def _source(name_or_id: str) -> DirectorySource:
    query = select(DirectorySource).where(DirectorySource.name == name_or_id)
    source = db.session.scalar(query)
    if source is None and name_or_id.isdigit():
        source = db.session.get(DirectorySource, int(name_or_id))
    if source is None:
        raise click.ClickException(f"No directory source named {name_or_id!r} (see: directory list).")
    return source


@directory_cli.command("list")
def list_command():
    """The sources with their last run."""
    for source in db.session.scalars(select(DirectorySource).order_by(DirectorySource.name)):
        last = source.runs[0] if source.runs else None
        state = f"last run {last.started_at:%Y-%m-%d %H:%M} {last.status.value}" if last else "never run"
        click.echo(f"{source.id}\t{source.name}\t{source.server_urls}\t{state}")


@directory_cli.command("sync")
@click.argument("source")
@click.option("--dry-run", is_flag=True, help="Show what would change; write nothing.")
@click.option("--changes-only", is_flag=True,
              help="Only entries changed since the last import (uSNChanged); vanished accounts are "
                   "not detected in this mode.")
@click.option("--confirm-deactivation", is_flag=True,
              help="Go ahead although more than the source's allowed share would become inactive.")
@click.option("--queue", "on_queue", is_flag=True,
              help="Hand the run to the background workers (flask worker) and return at once.")
def sync_command(source, dry_run, changes_only, confirm_deactivation, on_queue):
    """Import SOURCE (its name or id), here in this process (for cron or a systemd timer), or
    with --queue by a worker. Either way through a run of the source like the page's: when the
    source has a run queued or running, nothing starts (message on stderr, exit 1), and the page
    shows this one and refuses a second. Prints progress and a summary; exits 1 when the run
    fails, is held, cancelled or interrupted, so a scheduler notices."""
    found = _source(source)
    lease = int(current_app.config["JOB_LEASE_SECONDS"])
    try:
        with unit_of_work(db.session):
            run = queue_run(db.session, found, None, dry_run=dry_run, full=not changes_only,
                            confirm_deactivation=confirm_deactivation, lease_seconds=lease)
            if on_queue:
                enqueue_after_commit(db.session, IMPORT, run.id)
    except DomainError as exc:
        messages = exc.errors.values() if isinstance(exc, ValidationFailed) else [[str(exc)]]
        for message in (m for ms in messages for m in ms):
            click.echo(message, err=True)
        raise SystemExit(1) from None
    if on_queue:
        click.echo(f"Queued run #{run.id} of {source}: a worker runs it; the source's page shows "
                   "its progress.")
        return

    def progress(processed, total):
        if total:
            click.echo(f"  {processed}/{total} entries", err=True)

    done = run_queued(db.session, run.id, current_app.extensions["secret_box"],
                      SaveOptions(phone_region=current_app.config["PHONE_DEFAULT_REGION"]),
                      lease_seconds=lease, progress=progress)
    if done is None:
        click.echo(f"Run #{run.id} was cancelled before it started.", err=True)
        raise SystemExit(1)
    click.echo(f"{'Dry run' if done.dry_run else 'Import'} of {source}: {done.status.value}. "
               f"Created {done.created}, updated {done.updated}, unchanged {done.unchanged}, "
               f"deactivated {done.deactivated}, failed {done.failed}, left out {done.left_out}.")
    for change in done.changes or []:
        click.echo(f"  {'would update' if done.dry_run else 'updated'} {change['name']}: "
                   f"{change_text(change['fields'])}")
    for error in done.errors or []:
        account = f"{error['account']} " if error.get("account") else ""
        click.echo(f"  {'skipped' if error['skipped'] else 'warning'} {account}{error['dn']}: "
                   f"{error['message']}")
    if done.message:
        click.echo(done.message, err=done.status != SyncRunStatus.SUCCEEDED)
    if done.status != SyncRunStatus.SUCCEEDED:
        raise SystemExit(1)


@directory_cli.command("test")
@click.argument("source")
@click.option("--account", help="Look up this sAMAccountName instead of a sample of the filter's entries.")
def test_command(source, account):
    """Test connection to SOURCE (its name or id), as its page does: bind, count what the filter
    matches and show a few entries mapped as an import would. Exits 1 when it fails, with the
    reason in a sentence (an unreachable server, a refused password, a CA file that is not there)."""
    from services.directory.sources import check_connection

    report = check_connection(_source(source), current_app.extensions["secret_box"], account=account or None)
    if not report.ok:
        raise click.ClickException(report.message)
    click.echo(report.message)
    for entry in report.sample:
        if "left_out" in entry:
            click.echo(f"  {entry['sam'] or entry['dn']}: {entry['left_out']}")
        elif "refused" in entry:
            click.echo(f"  {entry['dn']}: {entry['refused']}")
        else:
            details = [entry["name"], entry["sam"], entry["email"], entry["department"], entry["title"],
                       "expired" if entry.get("expired") else "disabled" if entry["disabled"] else None]
            click.echo("  " + " · ".join(str(d) for d in details if d))


tokens_cli = AppGroup("tokens", help="API tokens of operators.")


@tokens_cli.command("create")
@click.argument("email")
@click.option("--name", default="command line", help="Where the token is used.")
def create_token_command(email, name):
    """Create an API token for the operator EMAIL; the token is the last line printed (shown
    only now: it is stored hashed)."""
    from services.api_tokens import create_token
    from services.errors import DomainError, ValidationFailed
    from services.operators import find_operator
    from services.transactions import unit_of_work

    operator = find_operator(db.session, email)
    if operator is None or not operator.is_active:
        raise click.ClickException(f"No active operator signs in as {email}.")
    try:
        with unit_of_work(db.session):
            _, token = create_token(db.session, operator, name)
    except DomainError as exc:  # refused: rolled back, a message and exit status 1
        messages = exc.errors.values() if isinstance(exc, ValidationFailed) else [[str(exc)]]
        raise click.ClickException(" ".join(m for ms in messages for m in ms)) from None
    click.echo(f"API token {name!r} for {operator.email} (shown only now):")
    click.echo(token)
