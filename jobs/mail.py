"""Mail jobs: sending the queued copies (services.mail_send) and reading intake mailboxes
(services.mail_intake)."""

from __future__ import annotations

from jobs.registry import job


@job("mail.send")
def send_mail(mail_id: int) -> None:
    from services.mail_send import send_queued

    send_queued(mail_id)
