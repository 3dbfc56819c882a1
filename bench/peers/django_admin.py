"""Django admin over the same tables, configured as the customers and contacts lists are: 20 per
page, the same columns, sorted by name, search and filters; Django's own defaults otherwise.
Every admin permission is granted without a user (AdminSite.has_permission and the ModelAdmins'
permission hooks), so no auth, session or content-type table is needed in the product's database.

`measure(url, repeat)` runs in a process of its own (Django's settings are process-wide): each
page of PAGES timed through Django's test client, median / p95 / max. bench.customers_list puts
these figures beside its own.
"""

from __future__ import annotations

import math
import statistics
import time

from sqlalchemy.engine import make_url

# Our pages by bench.measure's names, as Django admin URLs (`o` sorts by the n-th list column).
PAGES = {
    "page 1": "/peer/peers/customer/",
    "deep page": "/peer/peers/customer/?p=500",
    "sort name descending": "/peer/peers/customer/?o=-2",
    "filter kind": "/peer/peers/customer/?kind=company",
    "filter status": "/peer/peers/customer/?status__id__exact=2",
    "search kovac peter": "/peer/peers/customer/?q=kovac+peter",
    "search nov": "/peer/peers/customer/?q=nov",
    "search horv": "/peer/peers/customer/?q=horv",
    "contacts page 1": "/peer/peers/contact/",
    "contacts search kovac peter": "/peer/peers/contact/?q=kovac+peter",
    "contacts search nov": "/peer/peers/contact/?q=nov",
}
urlpatterns: list = []  # filled by _configure, once Django's apps are ready


def _database(url: str) -> dict:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": parsed.database}
    return {"ENGINE": "django.db.backends.postgresql", "NAME": parsed.database, "USER": parsed.username,
            "PASSWORD": parsed.password or "", "HOST": parsed.host, "PORT": parsed.port, "CONN_MAX_AGE": None}


def _configure(url: str) -> None:
    import django
    from django.conf import settings

    settings.configure(
        DEBUG=False, SECRET_KEY="bench only", ALLOWED_HOSTS=["testserver"], USE_TZ=False,
        ROOT_URLCONF=__name__, DATABASES={"default": _database(url)},
        INSTALLED_APPS=["django.contrib.admin", "django.contrib.auth", "django.contrib.contenttypes",
                        "django.contrib.sessions", "django.contrib.messages", "bench.peers"],
        MIDDLEWARE=["django.contrib.sessions.middleware.SessionMiddleware",
                    "django.middleware.csrf.CsrfViewMiddleware",
                    "django.contrib.auth.middleware.AuthenticationMiddleware",
                    "django.contrib.messages.middleware.MessageMiddleware"],
        TEMPLATES=[{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True,
                    "OPTIONS": {"context_processors": [
                        "django.template.context_processors.request",
                        "django.contrib.auth.context_processors.auth",
                        "django.contrib.messages.context_processors.messages"]}}],
    )
    django.setup()
    from django.urls import path

    urlpatterns.append(path("peer/", _site().urls))


def _site():
    from django.contrib import admin

    from bench.peers.models import Contact, Customer

    class OpenSite(admin.AdminSite):
        def has_permission(self, request):
            return True

    class Granted(admin.ModelAdmin):
        list_per_page = 20

        def has_view_permission(self, request, obj=None):
            return True

        has_change_permission = has_delete_permission = has_add_permission = has_view_permission

        def has_module_permission(self, request):
            return True

    class CustomerAdmin(Granted):
        list_display = ["photo", "name", "kind", "status", "email", "primary_phone", "sla_level",
                        "responsible", "updated_at"]
        list_select_related = ["status", "sla_level"]
        list_filter = ["kind", "status", "sla_level"]
        search_fields = ["display_name"]
        ordering = ["sort_name", "id"]

        @admin.display(ordering="sort_name", description="Name")
        def name(self, customer):
            return customer.display_name

        @admin.display(description="Responsible operators")
        def responsible(self, customer):
            return ", ".join(str(o) for o in customer.operators.all())

        def get_queryset(self, request):
            # Live customers only, as the product lists them (the same page).
            return super().get_queryset(request).filter(merged_into_id__isnull=True) \
                .prefetch_related("operators")

    class ContactAdmin(Granted):
        list_display = ["display_name", "customer", "is_main", "email", "phone", "title"]
        list_select_related = ["customer"]
        list_filter = ["is_main"]
        search_fields = ["display_name"]
        ordering = ["sort_name", "id"]

        def get_queryset(self, request):
            return super().get_queryset(request).filter(customer__merged_into_id__isnull=True)

    site = OpenSite(name="peer")
    site.register(Customer, CustomerAdmin)
    site.register(Contact, ContactAdmin)
    return site


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(len(ordered) * share)) - 1]


def measure(url: str, repeat: int, warmups: int = 2) -> dict[str, dict]:
    """{page name: {median_ms, p95_ms, max_ms, url}} for Django admin on the database at `url`."""
    _configure(url)
    from django.test import Client

    client = Client()
    figures = {}
    for name, page in PAGES.items():
        times = []
        for n in range(warmups + repeat):
            started = time.perf_counter()
            answer = client.get(page)
            answer.content  # noqa: B018  (the whole page is rendered and read)
            if n >= warmups:
                times.append((time.perf_counter() - started) * 1000)
            assert answer.status_code == 200, f"Django admin {page}: HTTP {answer.status_code}"
        figures[name] = {"url": page, "median_ms": statistics.median(times),
                         "p95_ms": _percentile(times, 0.95), "max_ms": max(times)}
    return figures
