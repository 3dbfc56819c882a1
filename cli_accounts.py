"""`flask --app app reset-maintainer-password` — the way back in when a maintainer's password
is lost (`create-maintainer` refuses an existing e-mail, and nobody else may know it)."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from extensions import db
from services.operators import reset_maintainer_password


@click.command("reset-maintainer-password")
@click.option("--email", required=True, help="The e-mail the maintainer signs in with.")
@click.password_option(help="Asked for when not given (typed twice, not shown).")
@with_appcontext
def reset_maintainer_password_command(email: str, password: str) -> None:
    """Set a new password for the maintainer who signs in with EMAIL and end their sessions.
    The password is never printed; the reset is in the audit trail."""
    from cli import writing  # cli registers this command: imported when it runs, not before

    with writing():
        operator = reset_maintainer_password(db.session, email, password)
    click.echo(f"The password of {operator.email} was reset; every session of theirs has ended.")
