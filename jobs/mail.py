"""Mail jobs: sending the queued copies (services.mail_send) and reading intake mailboxes
(services.mail_intake)."""

from __future__ import annotations

import logging

from jobs.registry import job, periodic

log = logging.getLogger(__name__)

# --- outgoing: copies of request communication (services.mail_send) -------------------------------

SEND = "mail.send"


@job(SEND)
def send_mail(mail_id: int) -> None:
    """One attempt at a queued copy; a failed attempt puts the job back for its next one."""
    from jobs.queue import enqueue_in
    from services.mail_send import send_queued

    delay = send_queued(mail_id)
    if delay is not None:
        try:
            enqueue_in(delay, SEND, mail_id)
        except Exception:  # the attempt is recorded; the minute's sweep delivers the retry instead
            log.exception("mail %s: the next attempt could not be put on the queue", mail_id)


@periodic("mail.sweep")
def sweep_queued_mail() -> list[int]:
    """Each minute: queued copies that are overdue (a lost retry or first enqueue, a worker that
    died mid-attempt) go back on the queue, so no copy stays queued for ever."""
    from extensions import db
    from jobs.queue import enqueue
    from services.mail_send import overdue_mail

    ids = overdue_mail(db.session)
    db.session.rollback()  # read only; each attempt runs in its own job and session
    for mail_id in ids:
        enqueue(SEND, mail_id)
    if ids:
        log.info("mail sweep: %d overdue copies queued again", len(ids))
    return ids


# --- incoming: requests by e-mail (services.pop3_reader, services.mail_intake) --------------------

FETCH = "mail.fetch"


@periodic(FETCH)
def fetch_intake_mail() -> None:
    """Each minute: read the intake mailboxes. Two workers (or a worker and `flask mail fetch`)
    reading at once are safe: each mail is recorded once and deleted only after its commit."""
    from flask import current_app

    from extensions import db
    from services.pop3_reader import ReadRules, fetch_all

    fetch_all(db.session, current_app.extensions["secret_box"], ReadRules.of(current_app.config))
