"""What the customer reads on a request's page: its thread and status history as one timeline,
oldest first, without the desk's internal notes (services.discussion.thread decides which
comments the customer's side sees)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from i18n import _l
from models import Request
from models.discussion import RequestAttachment, RequestComment, RequestStatusChange
from models.enums import RequestStatus, Via
from services.discussion import thread

# How each status looks on the portal (a CSS class of static/portal.css) and what it asks of the customer.
STATUS_STYLE = {RequestStatus.NEW: "new", RequestStatus.IN_PROGRESS: "progress",
                RequestStatus.RESOLVED: "done", RequestStatus.CLOSED: "accepted",
                RequestStatus.REOPENED: "reopened"}
STATUS_HINT = {
    RequestStatus.NEW: _l("The service desk has your request and will take it up."),
    RequestStatus.IN_PROGRESS: _l("The service desk is working on it."),
    RequestStatus.RESOLVED: _l("The service desk has completed it. Please accept the completion — or reopen "
                               "the request if something is still wrong."),
    RequestStatus.CLOSED: _l("You accepted the completion. You can still reopen it if the problem comes "
                             "back."),
    RequestStatus.REOPENED: _l("You reopened it; the service desk will take it up again."),
}


@dataclass
class Entry:
    """One line of the timeline: a comment, or a status change (with the comment given with it)."""

    at: datetime
    author: str
    from_desk: bool
    via: Via
    body: str | None = None
    old_status: RequestStatus | None = None
    new_status: RequestStatus | None = None
    attachments: list[RequestAttachment] = field(default_factory=list)
    order: int = 0

    @property
    def is_status(self) -> bool:
        return self.new_status is not None


def _attachments(comment: RequestComment | None, visible: set[int]) -> list[RequestAttachment]:
    if comment is None or comment.id not in visible:
        return []
    return list(getattr(comment, "attachments", []) or [])


def timeline(request: Request) -> list[Entry]:
    """The customer-visible comments and every status change, in the order they happened. A
    status change's comment is shown with it, not twice; one given with an internal note (an
    operator's choice) shows the change without the note."""
    comments = thread(request, for_operator=False)
    visible = {c.id for c in comments}
    with_change = {change.comment_id for change in request.status_changes if change.comment_id}
    entries = [Entry(at=c.created_at, author=c.author_name, from_desk=c.by_operator, via=c.via, body=c.body,
                     attachments=_attachments(c, visible), order=c.id * 2)
               for c in comments if c.id not in with_change]
    for change in request.status_changes:
        entries.append(_status_entry(change, visible))
    return sorted(entries, key=lambda e: (e.at, e.order))


def _status_entry(change: RequestStatusChange, visible: set[int]) -> Entry:
    note = change.comment if change.comment_id in visible else None
    return Entry(at=change.created_at, author=change.author_name, from_desk=change.by_operator,
                 via=change.via, body=note.body if note is not None else None, old_status=change.old_status,
                 new_status=change.new_status, attachments=_attachments(note, visible),
                 order=change.id * 2 + 1)


def shown_attachments(request: Request) -> dict[int, RequestAttachment]:
    """The request's files the customer may download: those of visible comments, and those
    stored with the request itself (a mail's files that became the request)."""
    visible = {c.id for c in thread(request, for_operator=False)}
    return {a.id: a for a in request.attachments if a.comment_id is None or a.comment_id in visible}
