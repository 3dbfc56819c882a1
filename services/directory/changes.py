"""Changes-only (incremental) runs of a directory import: where to start (the position kept per
domain controller: its invocationId → highestCommittedUSN, read before anything else), what to
read in full (the entries changed since, and what the keys pass shows new or out of step: AD
changes no uSNChanged when an account joins or leaves a group, or loses a deleted manager), and
keeping the position afterwards. Part of pipeline.Import (a mixin of its steps).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from sqlalchemy import select

from i18n import _
from models import Customer, DirectorySource
from services.directory import adapter
from services.directory.mapping import account_keys, requested_attributes
from services.directory.run_book import RunBook, SyncOptions, Tally
from services.directory.targets import PersonTarget
from services.transactions import DbSession, unit_of_work

FILTER_VALUES = 100  # GUIDs or manager DNs per search of a changes-only run (a filter of a few KB)


class ChangesOnly:
    """The changes-only steps; the attributes are Import's."""

    session: DbSession
    source: DirectorySource
    options: SyncOptions
    book: RunBook
    tally: Tally
    mapping: dict[str, str]
    search_filter: str
    changes_filter: str
    incremental: bool
    position: adapter.ServerPosition
    fallback: str | None
    extra: set[str]
    active_before: set[str]
    read: set[str]
    seen: set[str]
    managers: set[str]
    total: int | None
    started: datetime

    def find_position(self, conn) -> None:
        """Before anything is read: the DC's position (adapter.read_position), and for a
        changes-only run where to start. AD: the position this source keeps for that very DC
        (USNs are per DC); none, or one the DC has not reached (a restore), and every entry is
        read. A server without DC counters (OpenLDAP): the highest uSNChanged read before."""
        self.position = adapter.read_position(conn)
        if self.options.full:
            return
        dc = self.position
        if dc.dc is None:
            since = self.source.last_usn
        else:
            since = (self.source.usn_by_dc or {}).get(dc.dc)
            if since is None or dc.usn is None or since > dc.usn:
                since = None
                self.fallback = _("Changes only: every entry was read, as this source had no position of "
                                  "changes for the domain controller %(dc)s (a first run there, failover to "
                                  "another DC, or a DC restored from a backup). The next changes-only run "
                                  "there reads only changes.", dc=dc.host or dc.dc)
        self.incremental = since is not None
        if since is not None:
            self.changes_filter = adapter.changed_since(self.source.search_filter, since)

    def plan_changes(self, conn, target, seen: set[str], disabled: set[str]) -> int:
        """A changes-only run, after the keys pass: what it reads in full, and how many entries
        that is. The changed entries (uSNChanged), and the accounts the keys pass found that
        their records do not agree with — new to this source (joined the group of a memberOf
        filter, or moved into the base: AD changes nothing on them), active although disabled,
        inactive although back. Records not seen at all are deactivated at the end
        (deactivate_vanished), as in a full run."""
        model = target.model
        mine = model.directory_source_id == self.source.id
        known = set(self.session.scalars(select(model.directory_guid).where(mine)))
        self.active_before = set(self.session.scalars(select(model.directory_guid).where(
            mine, target.active_condition())))
        self.seen = seen
        self.extra = {g for g in seen if g not in known or (g in self.active_before) == (g in disabled)}
        changed = 0
        key = self.mapping["directory_guid"]
        for _dn, attributes in adapter.entries(conn, self.source.base_dn, self.changes_filter, [key],
                                               self.source.page_size):
            self.book.alive()
            changed += 1
            self.extra.discard(account_keys(attributes, self.mapping)[0] or "")
        return changed + len(self.extra)

    def read_entries(self, conn) -> Iterator[tuple[str, dict]]:
        """The entries this run reads in full: all of the filter (the managers first, see
        count_accounts), or (changes only) the changed ones and plan_changes' extra ones. Each
        account once."""
        if not self.incremental:
            yield from self._by_guid(conn, self.managers)
            yield from self._once(adapter.entries(conn, self.source.base_dn, self.search_filter,
                                                  requested_attributes(self.mapping), self.source.page_size))
            return
        yield from self._once(adapter.entries(conn, self.source.base_dn, self.changes_filter,
                                              requested_attributes(self.mapping), self.source.page_size))
        yield from self._by_guid(conn, self.extra)

    def reports_of_returned(self, conn, target: PersonTarget) -> Iterator[tuple[str, dict]]:
        """Changes only, after the changed entries were written: the reports of managers this
        run made active (enabled again, back in the filter, new). Their own entries did not
        change, so they were not read; read now, they link to their manager again."""
        rows = self.session.execute(select(Customer.directory_dn, Customer.directory_guid).where(
            Customer.directory_source_id == self.source.id, Customer.directory_synced_at == self.started,
            target.active_condition()))
        back = sorted(dn for dn, guid in rows if dn and guid not in self.active_before)
        reports: set[str] = set()
        key = self.mapping["directory_guid"]
        for dns in _chunks(back, FILTER_VALUES):
            wanted = adapter.reports_filter(self.search_filter, self.mapping["manager"], dns)
            for _dn, attributes in adapter.entries(conn, self.source.base_dn, wanted, [key],
                                                   self.source.page_size):
                guid = account_keys(attributes, self.mapping)[0]
                if guid is not None and guid in self.seen and guid not in self.read:
                    reports.add(guid)
        if reports:
            self.total = (self.total or 0) + len(reports)
            self.book.set_total(self.total)
            yield from self._by_guid(conn, reports)

    def _by_guid(self, conn, guids: set[str]) -> Iterator[tuple[str, dict]]:
        for chunk in _chunks(sorted(guids), FILTER_VALUES):
            wanted = adapter.guids_filter(self.search_filter, self.mapping["directory_guid"], chunk)
            yield from self._once(adapter.entries(conn, self.source.base_dn, wanted,
                                                  requested_attributes(self.mapping), self.source.page_size))

    def _once(self, entries: Iterator[tuple[str, dict]]) -> Iterator[tuple[str, dict]]:
        """`entries` without the accounts this run read already (self.read keeps their GUIDs)."""
        for dn, attributes in entries:
            guid = account_keys(attributes, self.mapping)[0]
            if guid is not None:
                if guid in self.read:
                    continue
                self.read.add(guid)
            yield dn, attributes

    def keep_position(self) -> None:
        """Remember how far the directory was read, for the next changes-only run: on AD the
        DC's highestCommittedUSN read before this run read anything (a change made meanwhile
        is read again next time, never missed), kept for that DC; on a server without it the
        highest uSNChanged this run read."""
        dc = self.position
        if dc.dc is not None and dc.usn is not None:
            with unit_of_work(self.session):
                self.source.usn_by_dc = {**(self.source.usn_by_dc or {}), dc.dc: dc.usn}
                self.source.last_usn = dc.usn
        elif self.tally.highest_usn is not None:
            with unit_of_work(self.session):
                self.source.last_usn = max(self.source.last_usn or 0, self.tally.highest_usn)


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]
