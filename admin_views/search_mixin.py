"""List search through the token index instead of Flask-Admin's ILIKE over every column, and
the one place where every list and picker parameter of the query string is made safe."""

from __future__ import annotations

import json
import re
from typing import Any

from flask import Response, abort, request
from flask_admin import expose
from flask_admin.babel import lazy_gettext
from flask_login import current_user

from admin_views.ids import MAX_ID, parse_id
from extensions import db
from services.counting import last_page

# C0 controls and DEL: nobody types them in a search box, and PostgreSQL refuses NUL in text.
CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
MAX_TERM = 255  # a search or filter text longer than any searchable column can match nothing more
PICKER_LIMIT = 50  # the most rows an ajax picker answers at once (Select2 asks for 10)


def plain_term(value: str | None) -> str | None:
    """Typed text as a search or filter may use it: controls become spaces, at most MAX_TERM
    characters; nothing left is None."""
    if value is None:
        return None
    text = CONTROL.sub(" ", value).strip()[:MAX_TERM]
    return text or None


def bounded(value: str | None, default: int, low: int, high: int) -> int:
    """An integer from the query string, or `default` when it is none or outside [low, high]."""
    try:
        number = int(value) if value is not None else default
    except ValueError:
        return default
    return number if low <= number <= high else default


class SafeListArgsMixin:
    """Page, search and filter values of a list, the `?id=` of a record page, and the text,
    offset and limit of an ajax picker, as the database can take them whatever the URL holds: a
    value out of range is the default (the first page, no filter, no record), controls are spaces.
    Every model view inherits it (admin_views.base.SecuredModelView)."""

    def _get_list_extra_args(self):
        args = super()._get_list_extra_args()  # type: ignore[misc]
        # The pages reach as far as the list is counted (services.counting): past the cap an
        # OFFSET walks a million rows, and "more than 10,000" is narrowed by a search or filter.
        page_size = self.get_safe_page_size(args.page_size)  # type: ignore[attr-defined]
        args.page = min(bounded(request.args.get("page"), 0, 0, MAX_ID), last_page(page_size))
        args.search = plain_term(args.search)
        if args.filters:
            # Checked again after the cleaning: "\x00" is a valid text but an empty id.
            filters = self._filters  # type: ignore[attr-defined]
            cleaned = [(index, name, plain_term(value)) for index, name, value in args.filters]
            args.filters = [(index, name, value) for index, name, value in cleaned
                            if value is not None and filters[index].validate(value)]
        return args

    def get_one(self, id):
        # Flask-Admin's own reader (views without row access) hands any `?id=` to the database;
        # text or a number beyond the column is no record rather than an error there.
        number = parse_id(id)
        return None if number is None else super().get_one(str(number))  # type: ignore[misc]

    @expose("/ajax/lookup/")
    def ajax_lookup(self):
        loader = (self._form_ajax_refs or {}).get(request.args.get("name"))  # type: ignore[attr-defined]
        if not loader:
            abort(404)
        rows = loader.get_list(plain_term(request.args.get("query")) or "",
                               bounded(request.args.get("offset"), 0, 0, MAX_ID),
                               bounded(request.args.get("limit"), 10, 1, PICKER_LIMIT))
        return Response(json.dumps([loader.format(row) for row in rows]), mimetype="application/json")


class TokenSearchMixin:
    """Replaces Flask-Admin's `_apply_search`; subclasses name `search_conditions`, a function
    from the typed text to WHERE conditions (services.search). The same conditions go to the
    count query, so the page count matches the rows."""

    search_placeholder_text = lazy_gettext("Search")  # Flask-Admin's own word, from its catalogs

    @staticmethod
    def search_conditions(text: str | None) -> list[Any]:
        """WHERE conditions for the typed text (services.search); none: no filtering."""
        return []

    # (session, text, offset, limit) → (count, ids) of a page in the list's default order, for a
    # reader who may list every live record (services.search.customer_listed_page); None: none.
    listed_search: Any = None

    def listed_page(self, search, offset: int, limit: int):
        # A maintainer's list is every live record: its search pages come from the token index
        # alone. Anyone else's is narrowed by their rights, which the list's own query applies.
        operator = current_user
        if (self.listed_search is None or not search or not operator.is_authenticated
                or not operator.is_active or not operator.is_maintainer):
            return None
        return self.listed_search(db.session, search, offset, limit)

    def search_placeholder(self) -> str:
        return str(self.search_placeholder_text)  # a lazy text, in the reader's language

    def _apply_search(self, query, count_query, joins, count_joins, search):
        conditions = self.search_conditions(search)
        if conditions:
            query = query.filter(*conditions)
            if count_query is not None:
                count_query = count_query.filter(*conditions)
        return query, count_query, joins, count_joins
