"""Form fields and ajax loaders shared by the admin views."""

from __future__ import annotations

from flask import g, request
from flask_admin.contrib.sqla.ajax import QueryAjaxModelLoader
from flask_login import current_user
from sqlalchemy import select
from wtforms import PasswordField, SelectField

from admin_views.ids import parse_id
from extensions import db
from i18n import _, _l
from models import Customer
from models.enums import CustomerKind
from services.access import Right, customer_condition
from services.search import customer_search_conditions

# What an edit form holds for a current choice the operator may not view.
KEPT = "kept"


class EnumSelectField(SelectField):
    """A select over a LabeledEnum that gives the model the enum member (or None)."""

    def __init__(self, label=None, validators=None, enum=None, blank: bool = True, **kwargs):
        self.enum = enum
        choices = ([("", "—")] if blank else []) + enum.choices()
        super().__init__(label, validators, choices=choices, coerce=self._coerce, **kwargs)

    def _coerce(self, value):
        if value in (None, "", "None"):
            return None
        return value if isinstance(value, self.enum) else self.enum(value)

    def _value(self):
        return self.data.value if self.data is not None else ""

    def pre_validate(self, form):
        if self.data is None or isinstance(self.data, self.enum):
            return
        raise ValueError(_("Choose one of the offered values."))


class NewPasswordField(PasswordField):
    """A password typed to be set: never rendered back, never copied onto the model."""

    def populate_obj(self, obj, name):
        return None


class CustomerAjaxLoader(QueryAjaxModelLoader):
    """Customer picker that searches the token index (diacritics-free, indexed), optionally
    only one kind: persons for a manager, companies for a contact's customer."""

    def __init__(self, name, session, kind: CustomerKind | None = None, right: Right = Right.VIEW,
                 current_of=None, **options):
        options.setdefault("fields", ["display_name"])
        options.setdefault("placeholder", _l("Type a name, e-mail or phone"))
        super().__init__(name, session, Customer, **options)
        self.kind = kind
        self.right = right
        # The column holding the edited record's current choice (e.g. Customer.manager_id): a
        # value the operator may not view was set by someone who could; the form carries it as
        # KEPT and it stays on save.
        self.current_of = current_of

    def format(self, model):
        from admin_views.row_access import visible_label

        if model is None:
            return None
        label = visible_label(model)
        if self.current_of is not None and not g.viewable_customers.get(model.id, True):
            return (KEPT, label)  # neither its name nor its id: "keep what is set" is all the form says
        return (getattr(model, self.pk), label)

    def _condition(self, right: Right):
        actor = current_user._get_current_object() if current_user.is_authenticated else None
        return customer_condition(db.session, actor, right)

    def _allowed(self, *conditions):
        query = select(Customer).where(self._condition(self.right), *conditions)
        return query.where(Customer.kind == self.kind) if self.kind is not None else query

    def get_one(self, pk):
        # A posted id is checked like a search result: a tampered form cannot pick a customer
        # the operator may not see, or one of the wrong kind — whoever it is, the refusal is the
        # same as for an id that does not exist, so it tells nothing about who manages whom.
        if pk == KEPT:
            return self._kept_choice()
        number = parse_id(pk)
        return None if number is None else db.session.scalar(self._allowed(Customer.id == number))

    def _kept_choice(self) -> Customer | None:
        """The current choice of the record this edit page saves (the page rendered it as KEPT:
        one the operator may not view, set by someone who could), read only from a record the
        operator may edit (the same policy as the page's own loader); elsewhere nothing."""
        if self.current_of is None or not (request.endpoint or "").endswith(".edit_view"):
            return None
        editing = parse_id(request.args.get("id"))
        current = None if editing is None else db.session.scalar(select(self.current_of).where(
            Customer.id == editing, self._condition(Right.EDIT)))
        return None if current is None else db.session.get(Customer, current)

    def get_list(self, term, offset=0, limit=10):
        query = self._allowed(*customer_search_conditions(term))
        query = query.order_by(Customer.sort_name, Customer.id).offset(offset).limit(limit)
        return list(db.session.scalars(query))
