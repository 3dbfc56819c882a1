"""A list page's rows written in Python, in the markup Flask-Admin's list.html gives them.

Through the template, each row of a customers page called four row-action macros (each building
its URL) and a block and a macro per cell: 62 % of the page's time at 20 rows. Here the row
actions are rendered once per page for a placeholder id and copied into each row; the cells are
the view's own list values (its formatters), escaped as Jinja escapes them. A view with cells
edited in the list (column_editable_list) keeps Flask-Admin's rows (templates/admin/cd_list.html).
"""

from __future__ import annotations

from typing import Any

from flask import g, url_for
from flask_admin.babel import gettext as admin_gettext
from flask_admin.model.template import LinkRowAction
from jinja2 import pass_context
from jinja2.runtime import Context
from markupsafe import Markup, escape

ROW_ID = "7777777777777"  # the placeholder id: digits, so no URL, HTML or int converter changes it


class _PlaceholderRow:
    """What the row actions see of a row when rendered once for all rows: its primary key."""

    def __init__(self, key: str) -> None:
        setattr(self, key, ROW_ID)


def record_url(endpoint: str, record_id: int, **values: Any) -> str:
    """url_for(endpoint, id=record_id, **values), built once per request and endpoint: a list
    page links every row to the same page of another record."""
    cache = g.setdefault("record_urls", {})
    key = (endpoint, tuple(sorted(values.items())))
    if key not in cache:
        cache[key] = url_for(endpoint, id=ROW_ID, **values).split(ROW_ID)
    parts = cache[key]
    if len(parts) != 2:  # the placeholder appears twice (in a value) or not at all
        return url_for(endpoint, id=record_id, **values)
    return f"{parts[0]}{int(record_id)}{parts[1]}"


def _copied_actions(view, context: Context) -> tuple[str, list] | None:
    """The row actions rendered for ROW_ID, and the actions that must be rendered per row (a
    link whose URL is computed from the row); None when the view's key is not one column."""
    if not isinstance(view._primary_key, str):
        return None
    placeholder = _PlaceholderRow(view._primary_key)
    shared, per_row = [], []
    for action in context["list_row_actions"]:
        if isinstance(action, LinkRowAction) and callable(action.url):
            per_row.append(action)
        else:
            shared.append(str(action.render_ctx(context, ROW_ID, placeholder)))
    return "".join(shared), per_row


class ListRowsMixin:
    """Every model view's list rows (SecuredModelView): `list_row_html(row)` from the template."""

    list_template = "admin/cd_list.html"

    @pass_context
    def list_row_html(self, context: Context, row) -> Markup:
        # f-strings with escape(): Markup.format costs as much as a cell's formatter.
        view: Any = self
        pk = escape(view.get_pk_value(row))
        cells = []
        if context.get("actions"):
            title = escape(admin_gettext("Select record"))
            cells.append(f'<td><input type="checkbox" name="rowid" class="action-checkbox" '
                         f'value="{pk}" title="{title}" /></td>')
        if view.column_display_actions:
            cells.append(f'<td class="list-buttons-column">{self._row_actions(context, pk, row)}</td>')
        for column, _name in context["list_columns"]:
            value = escape(view.get_list_value(context, row, column))
            cells.append(f'<td class="col-{escape(column)}">{value}</td>')
        return Markup("".join(cells))

    def _row_actions(self, context: Context, pk: str, row) -> Markup:
        pages = g.setdefault("list_row_actions", {})
        if id(self) not in pages:
            pages[id(self)] = _copied_actions(self, context)
        copied = pages[id(self)]
        if copied is None or not pk.isdigit():
            return Markup("").join(a.render_ctx(context, pk, row) for a in context["list_row_actions"])
        shared, per_row = copied
        own = "".join(str(a.render_ctx(context, pk, row)) for a in per_row)
        return Markup(shared.replace(ROW_ID, pk) + own)

