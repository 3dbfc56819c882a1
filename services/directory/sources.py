"""Directory sources: saving their settings (maintainers only) and testing a connection."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import inspect, select

from i18n import _
from models import Customer, DirectorySource, Operator
from models.directory import EMPTY_VALUES, KEEP_LOCAL
from models.enums import CustomerKind, DirectoryTarget
from services.access import require_maintainer
from services.audit import changes_of, record
from services.contact_info import clean_text
from services.directory import adapter
from services.directory.mapping import (
    DEFAULT_ATTRIBUTE_MAP,
    EntryRefused,
    Exclusion,
    attribute_map,
    map_entry,
    parse_account_patterns,
    parse_ous,
    parse_rules,
    requested_attributes,
)
from services.directory.pipeline import connection_settings
from services.directory.schedules import check_minutes, parse_time
from services.errors import ErrorBag
from services.outbound_policy import Outcome, Reach
from services.secrets import SecretBox
from services.transactions import DbSession, flush

MAX_PAGE_SIZE = 5000
# Settings that change what an entry becomes (or which entries are read): a change of one drops
# the kept positions of changes (save_source).
READ_AGAIN = {"attribute_map", "office_maps_to", "company_rules", "target", "target_company_id",
              "empty_values", "exclude_system_accounts", "exclude_ous", "exclude_accounts", "base_dn",
              "search_filter"}


def parse_mapping(text: str | None) -> dict[str, str]:
    """`field = attribute` lines as the overrides of the AD defaults (unchanged lines dropped).
    Raises ValueError naming the line that does not parse or the unknown field."""
    overrides = {}
    for number, line in enumerate((text or "").splitlines(), start=1):
        if not line.strip() or line.strip().startswith("#"):
            continue
        name, equals, attribute = line.partition("=")
        name, attribute = name.strip(), attribute.strip()
        if not equals or not attribute:
            raise ValueError(_("Line %(number)s: write “field = LDAP attribute”.", number=number))
        if name not in DEFAULT_ATTRIBUTE_MAP:
            raise ValueError(_("Line %(number)s: “%(name)s” is not a field; use one of %(fields)s.",
                               number=number, name=name, fields=", ".join(DEFAULT_ATTRIBUTE_MAP)))
        if DEFAULT_ATTRIBUTE_MAP[name] != attribute:
            overrides[name] = attribute
    return overrides


def mapping_text(source: DirectorySource) -> str:
    return "\n".join(f"{k} = {v}" for k, v in attribute_map(source.attribute_map).items())


def save_source(session: DbSession, actor: Operator | None, source: DirectorySource, box: SecretBox, *,
                bind_password: str | None = None, mapping: str | None = None,
                rules: str | None = None) -> DirectorySource:
    """Check and commit a source. An empty `bind_password` keeps the stored one; the password is
    kept only encrypted. Raises ValidationFailed (messages per field) or PermissionDenied."""
    bag = ErrorBag()
    # No flush before changes_of below: a flush (a lazy load of the actor may cause one) would
    # empty the history the audit event and the READ_AGAIN check are read from.
    with session.no_autoflush:
        require_maintainer(actor, _("manage directory sources"))
        source.name = bag.check("name", clean_text, source.name)
        if not source.name:
            bag.add("name", _("Give the source a name (used by the CLI: directory sync NAME)."))
        urls = (source.server_urls or "").replace(",", " ").split()
        if not urls:
            bag.add("server_urls", _("Add the server URL, e.g. ldaps://dc1.example.com."))
        for url in urls:
            if not url.lower().startswith(("ldap://", "ldaps://")):
                bag.add("server_urls", _("%(url)s: a server URL starts with ldap:// (StartTLS) or ldaps://.",
                                           url=url))
        source.server_urls = " ".join(urls)
        if not (source.base_dn or "").strip():
            bag.add("base_dn", _("Type the base DN to search, e.g. OU=Staff,DC=example,DC=com."))
        search_filter = (source.search_filter or "").strip()
        if not (search_filter.startswith("(") and search_filter.endswith(")")
                and search_filter.count("(") == search_filter.count(")")):
            bag.add("search_filter", _("An LDAP filter in parentheses, e.g. (objectClass=user)."))
        if not 1 <= (source.page_size or 0) <= MAX_PAGE_SIZE:
            bag.add("page_size", _("From 1 to %(limit)s (AD answers at most 1,000 per page).",
                                   limit=MAX_PAGE_SIZE))
        share = source.max_deactivate_percent
        if share is None or not 0 <= share <= 100:
            bag.add("max_deactivate_percent", _("A share from 0 to 100 %."))
        if source.office_maps_to not in ("site", "location"):
            bag.add("office_maps_to", _("Choose site or location."))
        if source.empty_values is None:  # not chosen (a source made in code): the default
            source.empty_values = KEEP_LOCAL
        if source.empty_values not in EMPTY_VALUES:
            bag.add("empty_values", _("Choose whether an empty directory value keeps the field's value in "
                                      "Customer Desk (keep) or clears it (clear)."))
        source.exclude_system_accounts = source.exclude_system_accounts is not False
        source.exclude_ous = _lines(bag.check("exclude_ous", parse_ous, source.exclude_ous))
        source.exclude_accounts = _lines(bag.check("exclude_accounts", parse_account_patterns,
                                                   source.exclude_accounts))
        source.full_sync_at = bag.check("full_sync_at", parse_time, source.full_sync_at)
        source.changes_every_minutes = bag.check("changes_every_minutes", check_minutes,
                                                 source.changes_every_minutes)
        _restart_schedules(source)
        if mapping is not None:
            source.attribute_map = bag.check("attribute_map", parse_mapping, mapping)
        if rules is not None:
            parsed = bag.check("company_rules", parse_rules, rules)
            if isinstance(parsed, list):
                source.company_rules = [vars(r) for r in parsed] or None
                _check_companies(session, [r.company_id for r in parsed], bag)
        if source.target == DirectoryTarget.CONTACTS and not source.company_rules \
                and source.target_company_id is None:
            bag.add("target_company_id", _("Contacts need a company: choose one, or write rules."))
        if bind_password:
            source.bind_password_encrypted = box.encrypt(bind_password)
        bag.raise_if_any()
    is_new = source.id is None
    session.add(source)
    with session.no_autoflush:
        changes = changes_of(source)
    if not is_new and READ_AGAIN & set(changes):
        # What an entry becomes changed: the positions of changes kept per DC no longer say what
        # was imported, so the next run, changes-only too, reads every entry again.
        source.usn_by_dc = None
        source.last_usn = None
    flush(session)
    record(session, actor, "create" if is_new else "update", source, changes)
    flush(session)
    return source


def _lines(parsed) -> str | None:
    """A parsed one-per-line setting as stored: its lines, or None when empty. What did not parse
    (the message is in the bag, the save refused) is left as typed."""
    return ("\n".join(parsed) or None) if isinstance(parsed, list) else parsed


def _restart_schedules(source: DirectorySource) -> None:
    """A changed schedule (or a source switched on) is next due counted from now: the scheduler
    works it out at its next tick (services.directory.schedules)."""
    state = inspect(source)
    if state.transient or state.pending:
        return
    for schedule, due in (("full_sync_at", "full_sync_due_at"), ("changes_every_minutes", "changes_due_at")):
        if state.attrs[schedule].history.has_changes() or state.attrs["is_active"].history.has_changes():
            setattr(source, due, None)


def _check_companies(session: DbSession, ids: list[int], bag: ErrorBag) -> None:
    found = set(session.scalars(select(Customer.id).where(Customer.id.in_(ids),
                                                          Customer.kind == CustomerKind.COMPANY)))
    missing = sorted(set(ids) - found)
    if missing:
        bag.add("company_rules", _("No company customer has the id %(ids)s.",
                                   ids=", ".join(map(str, missing))))


@dataclass
class ConnectionReport:
    ok: bool
    message: str
    count: int = 0
    sample: list[dict] = field(default_factory=list)
    outcome: Outcome = Outcome.CONNECTED
    warning: str | None = None  # said in `message` too: the password travels unencrypted


def password_warning(source: DirectorySource, box: SecretBox) -> str | None:
    """The source's bind password sent in clear text (adapter.cleartext_warning, the one rule),
    for its page once it is saved; None when it is not."""
    return adapter.cleartext_warning(connection_settings(source, box))


def check_connection(source: DirectorySource, box: SecretBox, *, account: str | None = None,
                     sample_size: int = 5, reach: Reach = Reach.ANY) -> ConnectionReport:
    """Bind, count what the filter matches, and map a few entries (or the typed account, whose
    name is escaped into the filter) the way an import would. Where it may connect is
    services.outbound_policy's rule for `reach` (outbound_policy.reach_of(actor)); the default is
    the reach of the only people who may open a source: maintainers and the command line."""
    mapping = attribute_map(source.attribute_map)
    exclusion = Exclusion.of(source.exclude_system_accounts, source.exclude_ous, source.exclude_accounts)
    search_filter = adapter.account_filter(source.search_filter, account) if account else source.search_filter
    settings = connection_settings(source, box)
    warning = adapter.cleartext_warning(settings)
    try:
        with adapter.connect(settings, reach) as conn:
            count, left_out, sample = 0, 0, []  # type: tuple[int, int, list[dict]]
            for dn, attributes in adapter.entries(conn, source.base_dn, search_filter,
                                                  requested_attributes(mapping), source.page_size):
                count += 1
                described = _describe(dn, attributes, mapping, exclusion)
                left_out += "left_out" in described
                if len(sample) < sample_size:
                    sample.append(described)
    except adapter.DirectoryError as exc:
        return ConnectionReport(False, " ".join(filter(None, [str(exc), warning])), outcome=exc.outcome,
                                warning=warning)
    who = source.bind_dn or _("anonymous")
    if left_out:
        message = _("Bound as %(who)s; the filter matches %(count)s entries, of which the source leaves out "
                    "%(left_out)s (built-in, service or excluded accounts).", who=who, count=count,
                    left_out=left_out)
    elif count == 1:
        message = _("Bound as %(who)s; the filter matches 1 entry.", who=who)
    else:
        message = _("Bound as %(who)s; the filter matches %(count)s entries.", who=who, count=count)
    return ConnectionReport(True, " ".join(filter(None, [message, warning])), count, sample,
                            warning=warning)


def _describe(dn: str, attributes: dict, mapping: dict[str, str], exclusion: Exclusion) -> dict:
    """A sample entry as Test connection shows it: the person an import would make, or why the
    import would leave it out ("left_out") or refuse it ("refused")."""
    reason = exclusion.reason(dn, attributes, mapping)
    if reason is not None:
        sam = {k.lower(): v for k, v in attributes.items()}.get(mapping["sam_account_name"].lower())
        return {"dn": dn, "sam": sam[0] if isinstance(sam, list) and sam else sam,
                "left_out": f"left out: {reason}"}
    try:
        person = map_entry(dn, attributes, mapping)
    except EntryRefused as exc:
        return {"dn": dn, "refused": str(exc)}
    return {"dn": dn, "name": f"{person.last_name}, {person.first_name}", "sam": person.sam,
            "email": person.email, "department": person.department, "title": person.title,
            "disabled": person.disabled, "expired": person.expired}
