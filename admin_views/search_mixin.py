"""List search through the token index instead of Flask-Admin's ILIKE over every column."""

from __future__ import annotations

from typing import Any


class TokenSearchMixin:
    """Replaces Flask-Admin's `_apply_search`; subclasses name `search_conditions`, a function
    from the typed text to WHERE conditions (services.search). The same conditions go to the
    count query, so the page count matches the rows."""

    search_placeholder_text = "Search"

    @staticmethod
    def search_conditions(text: str | None) -> list[Any]:
        """WHERE conditions for the typed text (services.search); none: no filtering."""
        return []

    def search_placeholder(self) -> str:
        return self.search_placeholder_text

    def _apply_search(self, query, count_query, joins, count_joins, search):
        conditions = self.search_conditions(search)
        if conditions:
            query = query.filter(*conditions)
            if count_query is not None:
                count_query = count_query.filter(*conditions)
        return query, count_query, joins, count_joins
