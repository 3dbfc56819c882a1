"""Pages behind the signed links in our e-mails (being built: issue 17)."""

from __future__ import annotations
