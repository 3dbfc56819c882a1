"""The customers and contacts pages as hand-written SQL through the bare driver (sqlite3,
psycopg): the floor the issue compares the app with. Each page is its rows with the names the
list shows (status, SLA level, company), the responsible operators of those rows, and an exact
count(*) as a hand-written page would count; a search is the peers' LIKE / ILIKE scan. Like the
product's lists (and the Django peer), a page lists live customers and their contacts only.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from sqlalchemy.engine import make_url

CUSTOMER_ROWS = """
    SELECT c.id, c.photo, c.display_name, c.kind, s.name, c.email, c.primary_phone, l.name, c.updated_at
    FROM customer c JOIN customer_status s ON s.id = c.status_id
    LEFT JOIN sla_level l ON l.id = c.sla_level_id
    WHERE c.merged_into_id IS NULL{where} ORDER BY c.sort_name {direction}, c.id {direction}
    LIMIT 20 OFFSET {offset}"""
OPERATORS = """
    SELECT co.customer_id, o.first_name, o.last_name FROM customer_operator co
    JOIN operator o ON o.id = co.operator_id WHERE co.customer_id IN ({ids})"""
CONTACT_ROWS = """
    SELECT t.id, t.display_name, c.display_name, t.is_main, t.email, t.phone, t.title
    FROM contact t JOIN customer c ON c.id = t.customer_id
    WHERE c.merged_into_id IS NULL{where} ORDER BY t.sort_name, t.id LIMIT 20"""


class RawPages:
    """One driver connection to the database at `url`; `page(...)` runs a page's statements."""

    def __init__(self, url: str):
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite":
            self.connection = sqlite3.connect(parsed.database or "")
            self.like = "LIKE"  # SQLite's LIKE ignores ASCII case, as ILIKE does
        else:
            import psycopg

            conninfo = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
            self.connection = psycopg.connect(conninfo, autocommit=True)
            self.like = "ILIKE"
        self.placeholder = "?" if isinstance(self.connection, sqlite3.Connection) else "%s"

    def close(self) -> None:
        self.connection.close()

    def _all(self, sql: str, params: tuple = ()) -> list[tuple]:
        cursor = self.connection.cursor()
        cursor.execute(sql, params)
        return cursor.fetchall()

    def customers(self, *, offset: int = 0, descending: bool = False, search: str | None = None) -> int:
        """A customers page; returns how many customers it counted."""
        where, params = "", ()
        if search:
            where, params = f" AND c.display_name {self.like} {self.placeholder}", (f"%{search}%",)
        rows = self._all(CUSTOMER_ROWS.format(where=where, direction="DESC" if descending else "ASC",
                                              offset=offset), params)
        if rows:
            self._all(OPERATORS.format(ids=", ".join(str(r[0]) for r in rows)))
        count = "SELECT count(*) FROM customer c WHERE c.merged_into_id IS NULL" + where
        return self._all(count, params)[0][0]

    def contacts(self, *, search: str | None = None) -> int:
        where, params = "", ()
        if search:
            where, params = f" AND t.display_name {self.like} {self.placeholder}", (f"%{search}%",)
        self._all(CONTACT_ROWS.format(where=where), params)
        return self._all("SELECT count(*) FROM contact t JOIN customer c ON c.id = t.customer_id "
                         "WHERE c.merged_into_id IS NULL" + where, params)[0][0]


def raw_page(name: str) -> Callable[[RawPages], int] | None:
    """The hand-written counterpart of a measured page, by the page's name; None if it has none."""
    return {
        "page 1": lambda raw: raw.customers(),
        "deep page": lambda raw: raw.customers(offset=9_980),
        "sort name descending": lambda raw: raw.customers(descending=True),
        "search nov": lambda raw: raw.customers(search="nov"),
        "search kovac peter": lambda raw: raw.customers(search="kovac"),
        "contacts page 1": lambda raw: raw.contacts(),
        "contacts search nov": lambda raw: raw.contacts(search="nov"),
    }.get(name)
