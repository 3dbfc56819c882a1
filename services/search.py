"""Search conditions over the token index (see models.search_index): case and diacritics
are ignored, every typed word must be the start of a word of the record."""

from __future__ import annotations

from sqlalchemy import ColumnElement, select

from models import Contact, ContactSearchToken, Customer, CustomerSearchToken
from models.search_index import prefix_upper_bound, search_terms


def _conditions(id_column, token_model, owner_column, text: str | None) -> list[ColumnElement]:
    conditions = []
    for term in search_terms(text):
        matching = select(owner_column).where(
            token_model.token >= term, token_model.token < prefix_upper_bound(term)
        )
        conditions.append(id_column.in_(matching))
    return conditions


def customer_search_conditions(text: str | None) -> list[ColumnElement]:
    """WHERE conditions selecting customers matching `text` (empty list: no search)."""
    return _conditions(Customer.id, CustomerSearchToken, CustomerSearchToken.customer_id, text)


def contact_search_conditions(text: str | None) -> list[ColumnElement]:
    """WHERE conditions selecting contacts matching `text`."""
    return _conditions(Contact.id, ContactSearchToken, ContactSearchToken.contact_id, text)
