"""Sending a queued copy through the customer's SMTP servers (being built: issue 17)."""

from __future__ import annotations


def send_queued(mail_id: int) -> None:
    raise NotImplementedError("mail sending is being built")
