"""Flask-Admin: the admin panel and every view registered on it."""

from __future__ import annotations

from flask_admin import Admin
from flask_admin.theme import Bootstrap4Theme

from admin_views.audit import AuditEventView
from admin_views.bulk_import import BulkImportView
from admin_views.contact_portal import ContactPortalPage
from admin_views.contacts import ContactView
from admin_views.customer_mail import MailPage
from admin_views.customer_page import customer_header, tab_bar
from admin_views.customer_pages import (
    BuildingsLookup,
    DeleteConfirmPage,
    OverviewPage,
    PhotoFilePage,
    PhotoPage,
    StatusPage,
)
from admin_views.customer_settings_tabs import SettingsPage
from admin_views.customer_tabs import (
    ComputersPage,
    ContactsPage,
    HistoryPage,
    OperatorsPage,
    PortalPage,
    WorkgroupsPage,
)
from admin_views.customers import CustomerView
from admin_views.dashboard import DashboardView
from admin_views.directory import DirectorySourceView
from admin_views.held_mail import HeldMailView
from admin_views.lookups import BuildingView, LookupView, SiteView, StatusView
from admin_views.operators import OperatorView
from admin_views.profile import ProfileView
from admin_views.requests import RequestView
from admin_views.security_groups import SecurityGroupView
from admin_views.settings import OwnershipRightsView, QuickCreateRulesView
from admin_views.tokens import ApiTokenView
from extensions import db
from i18n import _l
from models import (
    AuditEvent,
    Building,
    Contact,
    Customer,
    CustomerStatus,
    Department,
    DirectorySource,
    Operator,
    Request,
    SecurityGroup,
    Site,
    SlaLevel,
    Team,
    Workgroup,
)
from security_headers import csp_nonce
from wizards.views import WizardView

LOOKUPS = [
    (CustomerStatus, _l("Statuses"), "customer-statuses", StatusView),
    (SlaLevel, _l("SLA levels"), "sla-levels", LookupView),
    (Site, _l("Sites"), "sites", SiteView),
    (Building, _l("Buildings"), "buildings", BuildingView),
    (Department, _l("Departments"), "departments", LookupView),
    (Workgroup, _l("Customer workgroups"), "workgroups", LookupView),
    (SecurityGroup, _l("Security groups"), "security-groups", SecurityGroupView),
]


def init_admin(app) -> Admin:
    admin = Admin(
        app,
        name="Customer Desk",
        theme=Bootstrap4Theme(base_template="admin/cd_base.html", fluid=True),
        index_view=DashboardView(name=_l("Dashboard"), url="/admin"),
        csp_nonce_generator=csp_nonce,
    )
    admin.add_view(CustomerView(Customer, db, name=_l("Customers"), endpoint="customers"))
    # The pages of one customer, at the URLs they have always had; the tabs in this order: the
    # Overview, Basic information (CustomerView's edit form), then the rest.
    customer_pages = [
        OverviewPage(endpoint="customer_overview", url="/admin/customers/overview"),
        ContactsPage(endpoint="customer_contacts", url="/admin/customers/contacts-tab"),
        SettingsPage(endpoint="customer_settings", url="/admin/customers/settings"),
        OperatorsPage(endpoint="customer_operators", url="/admin/customers/operators-tab"),
        PortalPage(endpoint="customer_portal", url="/admin/customers/portal"),
        ContactPortalPage(endpoint="contact_portal", url="/admin/customers/contact-portal"),
        WorkgroupsPage(endpoint="customer_workgroups", url="/admin/customers/workgroups-tab"),
        ComputersPage(endpoint="customer_computers", url="/admin/customers/computers-tab"),
        MailPage(endpoint="customer_mail", url="/admin/customers/mail-tab"),
        HistoryPage(endpoint="customer_history", url="/admin/customers/history"),
        StatusPage(endpoint="customer_status", url="/admin/customers/status"),
        PhotoPage(endpoint="customer_photo", url="/admin/customers/photo"),
        PhotoFilePage(endpoint="customer_photo_file", url="/admin/customers/photo-file"),
        DeleteConfirmPage(endpoint="customer_delete_confirm", url="/admin/customers/delete-confirm"),
    ]
    for page in customer_pages:
        admin.add_view(page)
    app.jinja_env.globals["customer_page_tabs"] = tab_bar(customer_pages)
    app.jinja_env.globals["customer_header"] = customer_header
    admin.add_view(BuildingsLookup(endpoint="customer_buildings", url="/admin/customers/buildings"))
    admin.add_view(WizardView(name=_l("Add a customer"), endpoint="wizard", url="/admin/customers/wizard"))
    admin.add_view(RequestView(Request, db, name=_l("Requests"), endpoint="requests"))
    admin.add_view(ContactView(Contact, db, name=_l("Contacts"), endpoint="contacts"))
    admin.add_view(HeldMailView(name=_l("Held mail"), endpoint="held-mail", url="/admin/held-mail"))
    admin.add_view(OperatorView(Operator, db, name=_l("Operators"), endpoint="operators",
                                category=_l("Staff")))
    admin.add_view(LookupView(Team, db, name=_l("Teams"), endpoint="teams", category=_l("Staff")))
    admin.add_view(OwnershipRightsView(name=_l("Ownership rights"), endpoint="ownership-rights",
                                       category=_l("Settings")))
    admin.add_view(QuickCreateRulesView(name=_l("Quick-create rules"), endpoint="quick-create-rules",
                                        category=_l("Settings")))
    admin.add_view(AuditEventView(AuditEvent, db, name=_l("Audit trail"), endpoint="audit",
                                  category=_l("Settings")))
    admin.add_view(DirectorySourceView(DirectorySource, db, name=_l("Directory sources"),
                                       endpoint="directory", category=_l("Settings")))
    # Under Settings, where an operator sees only this entry (the rest are maintainers' pages).
    admin.add_view(ApiTokenView(name=_l("API tokens"), endpoint="api-tokens", url="/admin/api-tokens",
                                category=_l("Settings")))
    admin.add_view(BulkImportView(name=_l("Import customers"), endpoint="bulk-import",
                                  url="/admin/customers/import"))
    admin.add_view(ProfileView(name=_l("Your profile"), endpoint="profile", url="/admin/profile"))
    for model, name, endpoint, view in LOOKUPS:
        admin.add_view(view(model, db, name=name, endpoint=endpoint, category=_l("Lookups")))
    return admin
