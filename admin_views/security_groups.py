"""Portal security groups: what the portal accounts of a group may do. Maintainers only."""

from __future__ import annotations

from admin_views.lookups import LookupView
from i18n import _l


class SecurityGroupView(LookupView):
    """A named lookup with the two rights a portal account's group decides
    (services.discussion.Author.of_portal): creating requests, and — for a company's plain
    contacts — seeing all of the company's requests instead of only their own and assigned ones."""

    column_list = ["name", "may_create_requests", "may_see_all_requests"]
    column_labels = {"name": _l("Name"), "may_create_requests": _l("May create requests"),
                     "may_see_all_requests": _l("Contacts see all the company's requests")}
    form_columns = ["name", "may_create_requests", "may_see_all_requests"]
    column_descriptions = {
        "may_create_requests": _l("Portal accounts of this group may raise new requests on the portal."),
        "may_see_all_requests": _l("A contact in this group sees every request of its company, not only "
                                   "those assigned to it or raised by it. (Main contacts and a company's own "
                                   "account always see all.)"),
    }
    form_args = {
        "may_create_requests": {"description": column_descriptions["may_create_requests"]},
        "may_see_all_requests": {"description": column_descriptions["may_see_all_requests"]},
    }
