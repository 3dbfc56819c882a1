"""Portal pages for signed-in portal accounts (being built: issue 17)."""

from __future__ import annotations
