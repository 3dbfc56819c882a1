"""The pages of one customer (its tabs, the status dialog, the photo, the delete confirmation):
each a small registered view declaring its template, form and rights next to itself.

Like NetBox's ObjectView on a Flask-Admin BaseView: a `CustomerPage` subclass says which template
it renders, which form it reads, which right a GET needs (`right`) and which a POST needs
(`post_right`), and which tabs of the tab bar it is. The base class does the rest the same way
for every page: the signed-in check, the customer read through the one loader
(services.access.load_customer: 404 for a customer the operator may not view, 403 without the
declared right, a merged-away id redirected to its survivor), then `get(customer)` or
`post(customer)`. A page writes inside admin_views.refusals.panel_write; it never commits, rolls
back or catches PermissionDenied itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, NamedTuple

from flask import abort, request
from flask_admin import BaseView, expose
from flask_login import current_user
from wtforms import Form

from admin_views.base import actor, deny_or_login
from extensions import db
from i18n import _l
from models import Customer
from services.access import Right, can, load_customer
from services.customers import require_operator_assignment


class TabSpec(NamedTuple):
    """A tab a page declares: its key, its label, extra URL arguments (the settings tabs)."""

    key: str
    label: str
    args: Mapping[str, str] = {}


class Tab(NamedTuple):
    """A tab of the bar: where its link goes."""

    key: str
    label: str
    endpoint: str
    args: Mapping[str, str]


# Basic information is Flask-Admin's edit form of CustomerView: the first tab after the pages
# that lead the bar (the Overview, `leads_the_tab_bar`).
BASIC_INFORMATION = Tab("basic", _l("Basic information"), "customers.edit_view", {})


class PanelPage(BaseView):
    """A panel page outside the menu, for any signed-in, active operator (anonymous visitors
    go to the sign-in page)."""

    def is_visible(self) -> bool:
        return False

    def is_accessible(self) -> bool:
        return bool(current_user.is_authenticated and current_user.is_active)

    def inaccessible_callback(self, name, **kwargs):
        return deny_or_login()


class CustomerPage(PanelPage):
    """One page of one customer; subclasses declare, `index` loads and dispatches.

    Every subclass states these in its own body (tests/test_customer_tabs.py checks it):
    `template` (None for a page that only redirects or sends a file), `form` (None without a
    WTForms form), `right` (what a GET needs; None: the page has no GET) and `post_right` (what
    a POST needs; None: no POST). `post_maintainer_only` adds that only a maintainer may POST.
    `tabs` are the page's entries in the tab bar (none for the pages that are not tabs).
    `route` is the page's URL below its registered url; `<int:customer_id>` in it names the
    customer instead of the query's `id` (other parts of it: `request.view_args`).
    """

    template: ClassVar[str | None] = None
    form: ClassVar[type[Form] | None] = None
    right: ClassVar[Right | None] = None
    post_right: ClassVar[Right | None] = None
    post_maintainer_only: ClassVar[bool] = False
    tabs: ClassVar[tuple[TabSpec, ...]] = ()
    leads_the_tab_bar: ClassVar[bool] = False  # its tabs come before Basic information
    route: ClassVar[str] = "/"

    def __init__(self, *, endpoint: str, url: str, **kwargs: Any) -> None:
        kwargs.setdefault("name", _l("Customers"))  # the heading above the customer's tab bar
        super().__init__(endpoint=endpoint, url=url, **kwargs)
        # The one rule of the page: its route, and only the methods it declares rights for
        # (Flask answers any other method with 405).
        self._urls = [(self.route, "index", self.methods())]

    @classmethod
    def methods(cls) -> tuple[str, ...]:
        return tuple(method for method, right in (("GET", cls.right), ("POST", cls.post_right))
                     if right is not None)

    @expose("/", methods=("GET", "POST"))
    def index(self, customer_id: int | None = None, **path: str):
        del path  # the page reads the rest of its route from request.view_args
        reference = customer_id if customer_id is not None else request.args.get("id")
        if request.method == "POST":
            if self.post_right is None:
                abort(405)
            customer = load_customer(db.session, actor(), reference, self.post_right)
            if self.post_maintainer_only:  # the Operators tab: the command's own rule, checked first
                require_operator_assignment(actor())
            return self.post(customer)
        if self.right is None:
            abort(405)
        return self.get(load_customer(db.session, actor(), reference, self.right))

    def get(self, customer: Customer):
        """The page (a GET never writes)."""
        abort(405)

    def post(self, customer: Customer):
        """The page's write, inside panel_write."""
        abort(405)

    def make_form(self, **kwargs: Any) -> Form:
        """The declared form, filled from the POST (or empty / from `data` for a GET)."""
        if self.form is None:
            raise TypeError(f"{type(self).__name__} declares no form")
        return self.form(request.form if request.method == "POST" else None, **kwargs)

    def render_page(self, customer: Customer, **context: Any) -> str:
        """The declared template with the customer, the active tab and whether the operator may
        edit the customer (read-only pages say so)."""
        if self.template is None:
            raise TypeError(f"{type(self).__name__} declares no template")
        context.setdefault("active_tab", self.tabs[0].key if self.tabs else None)
        context.setdefault("may_edit", can(db.session, actor(), customer.id, Right.EDIT))
        return self.render(self.template, customer=customer, **context)


def tab_bar(pages: Iterable[BaseView]) -> tuple[Tab, ...]:
    """The tab bar of every customer page, from the registered pages in their order: the tabs
    of the pages that lead the bar (the Overview), Basic information, then the rest."""
    leading: list[Tab] = []
    rest: list[Tab] = []
    for page in pages:
        if isinstance(page, CustomerPage):
            (leading if page.leads_the_tab_bar else rest).extend(
                Tab(spec.key, spec.label, f"{page.endpoint}.index", dict(spec.args)) for spec in page.tabs)
    return (*leading, BASIC_INFORMATION, *rest)


def customer_header(customer: Customer) -> dict[str, Any]:
    """What the header above every tab of a customer needs besides the customer (a Jinja global,
    templates/admin/_customer_tabs.html): the operator's rights on it, the statuses of the
    Change Status dialog and the contact form of "Quick add contact". Reads only."""
    from sqlalchemy import select

    from admin_views.customer_tabs import NewContactForm
    from models import CustomerStatus
    from models.enums import CustomerKind

    session = db.session
    may_edit = can(session, actor(), customer.id, Right.EDIT)
    is_company = customer.kind == CustomerKind.COMPANY
    return {
        "may_edit": may_edit,
        "may_delete": can(session, actor(), customer.id, Right.DELETE),
        "is_company": is_company,
        "statuses": session.scalars(select(CustomerStatus).order_by(CustomerStatus.name)).all()
        if may_edit else [],
        "contact_form": NewContactForm() if may_edit and is_company else None,
    }
