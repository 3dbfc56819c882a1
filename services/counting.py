"""How many records a list holds, counted exactly up to COUNT_CAP and no further.

An exact count(*) reads every matching row: at a million customers that is most of a list
page's time (a broad search such as "nov" matches tens of thousands) although nobody reads
"57,312" differently from "more than 10,000". Every list door (the panel's lists, the API) counts
through here, and a list's pages reach only as far as its counted rows (`last_page`).
"""

from __future__ import annotations

from flask_babel import format_decimal
from flask_sqlalchemy.query import Query
from markupsafe import Markup
from sqlalchemy import Select, func, literal_column, select
from sqlalchemy.orm import Session

from i18n import _

COUNT_CAP = 10_000


class CappedCount(int):
    """A count of at most COUNT_CAP + 1 rows; COUNT_CAP + 1 means "more than COUNT_CAP"."""

    @property
    def exact(self) -> bool:
        return self <= COUNT_CAP

    def __str__(self) -> str:
        if self.exact:
            return format_decimal(int(self))
        return _("more than %(count)s", count=format_decimal(COUNT_CAP))

    def __html__(self) -> str:
        # Jinja prints a value through __html__ when it has one: every list template that shows
        # `{{ count }}` (Flask-Admin's own and ours) then reads "more than 10,000".
        return str(Markup.escape(str(self)))


def capped_count(session: Session, statement: Select) -> CappedCount:
    """How many rows `statement` (a SELECT of the listed records with their conditions) gives,
    up to COUNT_CAP + 1."""
    rows: Select = statement.with_only_columns(literal_column("1")).order_by(None).limit(COUNT_CAP + 1)
    return CappedCount(session.scalar(select(func.count()).select_from(rows.subquery())) or 0)


def last_page(page_size: int) -> int:
    """The last page (0-based) a list of page_size rows per page reaches within the cap."""
    return COUNT_CAP // page_size


class CappedCountQuery(Query):
    """Flask-Admin's count query (`SELECT count(*) FROM … WHERE …`, built up by the views'
    search, filters and row access, each of which keeps this class) whose `scalar()` counts up
    to the cap instead."""

    def scalar(self):
        return capped_count(self.session, self.statement)
