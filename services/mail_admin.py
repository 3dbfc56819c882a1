"""What the desk's staff decide about its mail: resending a copy, and what requests by e-mail do
with a mail from an unknown sender. The doors (the request page, the customer's Mail tab, the
global settings page) call these in their unit of work."""

from __future__ import annotations

from sqlalchemy import select

from i18n import _, _l
from models import Operator
from models.enums import MailState, UnknownSenders
from models.mail import OutgoingMail
from services.access import Right, ownership_rights, require, require_maintainer
from services.audit import changes_of, record
from services.errors import DomainError, ValidationFailed
from services.reference_data import ensure_reference_data
from services.transactions import DbSession, flush, hold_transaction
from services.versions import ON_CURRENT, SeenVersion, check_seen_version

RESENT_QUEUED = _l("A new copy of this message is queued already: it is on its way.")
STILL_QUEUED = _l("This copy is still queued: the desk sends it (and retries it) on its own. "
                  "Resend it once it has been sent or has failed.")


def resend_copy(session: DbSession, actor: Operator | None, mail: OutgoingMail) -> OutgoingMail:
    """Queue a new copy of a sent or failed message to the same recipient (services.mail_out.resend;
    the old row keeps its history). Whoever may view the customer may resend its mail. A copy still
    queued is refused: a second one would reach the recipient twice. Raises PermissionDenied or
    DomainError; flushes, the door commits (the new copy is sent after the commit)."""
    from services.mail_out import resend

    require(session, actor, mail.customer_id, Right.VIEW)
    if mail.state == MailState.QUEUED:
        raise DomainError(str(STILL_QUEUED))
    hold_transaction(session)  # SQLite: the write lock first, so two clicks at once queue one copy
    session.refresh(mail, with_for_update=True)  # PostgreSQL: the same, by the original's row lock
    if session.scalar(select(OutgoingMail.id).where(OutgoingMail.resent_from_id == mail.id,
                                                    OutgoingMail.state == MailState.QUEUED)) is not None:
        raise DomainError(str(RESENT_QUEUED))
    copy = resend(session, mail)
    record(session, actor, "resend", copy, {"resent_from": [None, mail.id],
                                            "recipient": [None, mail.recipient_email]})
    return copy


def save_unknown_senders(session: DbSession, actor: Operator | None, choice: str | None, *,
                         seen_version: SeenVersion = ON_CURRENT) -> None:
    """What requests by e-mail do with a mail from an address that is no customer's or contact's:
    hold it for an operator or refuse it (never a customer made silently). Maintainers only;
    audited; based on the global settings' `seen_version` (services.versions). Raises
    PermissionDenied, ValidationFailed (field `unknown_senders`), StaleRecord."""
    require_maintainer(actor, _("change what happens to mail from unknown senders"))
    try:
        value = UnknownSenders(choice or "")
    except ValueError:
        raise ValidationFailed({"unknown_senders": [
            _("Choose whether such mail is held for an operator or refused.")]}) from None
    ensure_reference_data(session)
    rules = ownership_rights(session)  # the one GlobalSettings row
    check_seen_version(session, "globalsettings", rules, seen_version)
    rules.unknown_senders = value
    changes = changes_of(rules)
    flush(session)
    if changes:
        record(session, actor, "update", rules, changes, entity_type="globalsettings")
    flush(session)
