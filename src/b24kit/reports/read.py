"""What the management reports read from a portal, streamed into a private SQLite file so
memory stays bounded however many deals there are (as links/index.py does for audits).

Read with the batched keyset reader (``iterate``: no full-table count):
- the parents: deals of the links' parent pipelines (the sales directions), filtered on
  the portal by direction, manager and period (``BEGINDATE``);
- the children: every deal of the links' child pipelines (the departments);
- the stage history of those pipelines' deals (``crm.stagehistory.list``);
- the leads the parents were converted from (``LEAD_ID``), by id, 500 to a request;
- the users named (``user.get``), the source names (``crm.status.list``) and the
  contractor directory's entries (``crm.item.list``)."""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from b24kit.blueprint.model import Blueprint
from b24kit.client import B24Client, iterate, read_all
from b24kit.errors import InputError
from b24kit.links.directory import ResolvedDirectory, number, read_entries, resolve_directory
from b24kit.links.model import ResolvedLink, deal_id, resolve_links
from b24kit.portal.ids import EntityType, uf_name
from b24kit.portal.snapshot import PipelineSnap, Snapshot, read_snapshot
from b24kit.portal.users import display_name, read_active_users, read_users

UTM = ("UTM_SOURCE", "UTM_MEDIUM", "UTM_CAMPAIGN", "UTM_CONTENT", "UTM_TERM")
PAID_FIELD = "CONTRACTOR_PAID"  # yes/no on the estimate: the contractor was paid
CHUNK = 2500
DEAL_COLUMNS = (
    "id, category, stage, semantic, assigned, amount, title, created, begin, closed, "
    "source, utm_source, utm_medium, utm_campaign, utm_content, utm_term, lead, parent, "
    "quote_price, quote_at, contractor, in_house, contractor_price, rating, paid"
)


@dataclass
class Filters:
    """Which projects a report covers: parents by sales direction (pipeline codes), by
    manager (user id) and by period (their ``BEGINDATE``, both ends included)."""

    pipelines: list[str] = field(default_factory=list)
    manager: str | None = None  # a user id or name, as given
    since: date | None = None
    until: date | None = None
    overdue_days: float = 7.0

    @property
    def any(self) -> bool:
        return bool(self.pipelines or self.manager or self.since or self.until)


@dataclass
class Scope:
    """The blueprint resolved against the portal: the links, their parent pipelines (the
    sales directions) and child pipelines (the departments), the directory."""

    links: list[ResolvedLink]
    directory: ResolvedDirectory | None
    snap: Snapshot

    def __post_init__(self) -> None:
        self.parents: dict[int, PipelineSnap] = {}
        self.codes: dict[str, int] = {}  # sales direction code -> CATEGORY_ID
        self.children: dict[int, tuple[ResolvedLink, PipelineSnap]] = {}
        for link in self.links:
            for code, p in zip(link.link.parent.codes, link.parents, strict=False):
                self.parents.setdefault(p.id, p)
                self.codes.setdefault(code, p.id)
            self.children.setdefault(link.child.id, (link, link.child))
        self.stages = {
            s.status_id: s for p in self.snap.deal_pipelines for s in p.stages
        }  # STATUS_IDs are unique on a portal

    @property
    def estimate(self) -> ResolvedLink:
        """The link whose child is the estimate: the directory's, else the first with a
        move (the child stage that moves the parent: «Согласование»)."""
        if self.directory is not None:
            name = self.directory.d.link
            return next(x for x in self.links if x.name == name)
        return next((x for x in self.links if x.moves), self.links[0])

    def stage_name(self, status_id: str) -> str:
        stage = self.stages.get(status_id)
        return stage.name if stage else status_id

    def stage_sort(self, status_id: str) -> int:
        stage = self.stages.get(status_id)
        return stage.sort if stage else 0

    def deal_fields(self) -> list[str]:
        names = {
            "ID",
            "TITLE",
            "CATEGORY_ID",
            "STAGE_ID",
            "STAGE_SEMANTIC_ID",
            "ASSIGNED_BY_ID",
            "OPPORTUNITY",
            "DATE_CREATE",
            "BEGINDATE",
            "CLOSEDATE",
            "SOURCE_ID",
            "LEAD_ID",
            *UTM,
        }
        for link in self.links:
            names.add(link.child_field)
            for quote in link.quotes.values():
                names |= {f for f in (quote.price, quote.time) if f}
        if self.directory is not None:
            names |= set(self.directory.record.values())
        names.add(uf_name(PAID_FIELD))
        return sorted(names)


async def resolve_scope(client: B24Client, bp: Blueprint) -> Scope:
    if not bp.links:
        raise InputError("the blueprint declares no links: a report follows parents to children")
    snap = await read_snapshot(client)
    links = resolve_links(bp, snap)
    directory = resolve_directory(bp, snap, bp.directories[0]) if bp.directories else None
    return Scope(links, directory, snap)


# ------------------------------------------------------------------------ store
class ReportStore:
    """The deals, their stage history and the leads, in a private on-disk SQLite file
    (removed when closed); the reports are indexed queries over it."""

    def __init__(self) -> None:
        self.conn = sqlite3.connect("")
        self.conn.execute("PRAGMA cache_size = -4000")  # 4 MB of pages at most
        self.conn.execute(f"CREATE TABLE deals ({DEAL_COLUMNS}, PRIMARY KEY (id)) WITHOUT ROWID")
        self.conn.execute("CREATE TABLE history (owner INTEGER, stage TEXT, at TEXT)")
        self.conn.execute(
            "CREATE TABLE leads (id INTEGER PRIMARY KEY, source TEXT, utm_source TEXT, "
            "utm_medium TEXT, utm_campaign TEXT, utm_content TEXT, utm_term TEXT)"
        )
        self.deals = 0
        self.history_rows = 0
        self.now = datetime.now().astimezone()
        self.users: dict[int, str] = {}
        self.sources: dict[str, str] = {}  # SOURCE_ID -> its name
        self.entries: dict[int, str] = {}  # directory entry id -> its title
        self.projects: object = None  # the projects' rows, once made (reports/tables.py)

    def add_deals(self, rows: Iterable[tuple[Any, ...]]) -> None:
        batch = list(rows)
        marks = ",".join("?" * len(DEAL_COLUMNS.split(",")))
        self.conn.executemany(f"INSERT OR REPLACE INTO deals VALUES ({marks})", batch)
        self.deals += len(batch)

    def add_history(self, rows: list[tuple[int, str, str]]) -> None:
        self.conn.executemany("INSERT INTO history VALUES (?,?,?)", rows)
        self.history_rows += len(rows)

    def finish(self) -> None:
        for sql in (
            "CREATE INDEX by_parent ON deals(parent, category, id)",
            "CREATE INDEX by_category ON deals(category, id)",
            "CREATE INDEX by_lead ON deals(lead) WHERE lead IS NOT NULL",
            "CREATE INDEX history_by_owner ON history(owner, stage, at)",
        ):
            self.conn.execute(sql)

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
        """Rows of a query, fetched 2,000 at a time."""
        cursor = self.conn.execute(sql, params)
        while rows := cursor.fetchmany(2000):
            yield from rows

    def one(self, sql: str, params: tuple[Any, ...] = ()) -> tuple[Any, ...] | None:
        row: tuple[Any, ...] | None = self.conn.execute(sql, params).fetchone()
        return row

    def close(self) -> None:
        self.conn.close()


def _text(value: Any) -> str | None:
    if isinstance(value, list):
        value = value[0] if value else None
    text = str(value).strip() if value not in (None, "", False) else ""
    return sys.intern(text) if text else None


def _flag(value: Any) -> int | None:
    text = str(value if value is not None else "").strip().upper()
    if text in ("1", "Y", "TRUE"):
        return 1
    if text in ("0", "N", "FALSE"):
        return 0
    return None


def deal_row(row: dict[str, Any], scope: Scope) -> tuple[Any, ...]:
    """One deal as the store keeps it (quote and contractor fields only where they exist)."""
    quote = next(iter(scope.estimate.quotes.values()), None)
    d = scope.directory.record if scope.directory else {}
    lead = deal_id(row.get("LEAD_ID"))
    parent = next(
        (deal_id(row.get(link.child_field)) for link in scope.links if row.get(link.child_field)),
        None,
    )
    rating = row.get(d["rating"]) if "rating" in d else None
    contractor = row.get(d["contractor"]) if "contractor" in d else None
    return (
        int(row["ID"]),
        int(row.get("CATEGORY_ID") or 0),
        sys.intern(str(row.get("STAGE_ID") or "")),
        sys.intern(str(row.get("STAGE_SEMANTIC_ID") or "P")),
        int(row["ASSIGNED_BY_ID"]) if row.get("ASSIGNED_BY_ID") else None,
        float(row.get("OPPORTUNITY") or 0),
        str(row.get("TITLE") or ""),
        str(row.get("DATE_CREATE") or "") or None,
        str(row.get("BEGINDATE") or "")[:10] or None,
        str(row.get("CLOSEDATE") or "")[:10] or None,
        _text(row.get("SOURCE_ID")),
        *(_text(row.get(u)) for u in UTM),
        lead or None,
        parent,
        number(row.get(quote.price)) if quote and quote.price else None,
        _text(row.get(quote.time)) if quote and quote.time else None,
        _entry(contractor, scope.directory),
        _flag(row.get(d["in_house"])) if "in_house" in d else None,
        number(row.get(d["price"])) if "price" in d else None,
        scope.directory.ratings.get(str(rating)) if scope.directory and rating else None,
        _flag(row.get(uf_name(PAID_FIELD))),
    )


def _entry(value: Any, directory: ResolvedDirectory | None) -> int | None:
    if directory is None or value in (None, "", []):
        return None
    text = str(value[0] if isinstance(value, list) else value)
    prefix = f"T{directory.etid:x}_".upper()
    if text.upper().startswith(prefix) and text[len(prefix) :].isdigit():
        return int(text[len(prefix) :])
    return int(text) if text.isdigit() else None


async def _stream_deals(
    client: B24Client, store: ReportStore, scope: Scope, flt: dict[str, Any]
) -> None:
    page: list[tuple[Any, ...]] = []
    async for row in iterate(
        client, "crm.deal.list", {"filter": flt, "select": scope.deal_fields()}
    ):
        page.append(deal_row(row, scope))
        if len(page) >= CHUNK:
            store.add_deals(page)
            page = []
    store.add_deals(page)


def parent_filter(scope: Scope, filters: Filters, manager: int | None) -> dict[str, Any]:
    categories = (
        [scope.codes[c] for c in filters.pipelines] if filters.pipelines else list(scope.parents)
    )
    flt: dict[str, Any] = {"@CATEGORY_ID": sorted(categories)}
    if manager is not None:
        flt["ASSIGNED_BY_ID"] = manager
    if filters.since:
        flt[">=BEGINDATE"] = filters.since.isoformat()
    if filters.until:
        flt["<=BEGINDATE"] = filters.until.isoformat()
    return flt


async def _stream_history(
    client: B24Client, store: ReportStore, categories: list[int], since: date | None = None
) -> None:
    page: list[tuple[int, str, str]] = []
    async for row in iterate(
        client,
        "crm.stagehistory.list",
        {
            "entityTypeId": int(EntityType.DEAL),
            "filter": {"@CATEGORY_ID": categories},
            "select": ["ID", "OWNER_ID", "STAGE_ID", "CREATED_TIME"],
        },
    ):
        page.append(
            (int(row["OWNER_ID"]), sys.intern(str(row["STAGE_ID"])), str(row["CREATED_TIME"]))
        )
        if len(page) >= CHUNK:
            store.add_history(page)
            page = []
    store.add_history(page)


async def _read_leads(client: B24Client, store: ReportStore) -> None:
    """The leads the deals name, 500 ids at a time (in id order, never all the ids)."""
    after = 0
    while ids := [
        r[0]
        for r in store.conn.execute(
            "SELECT DISTINCT lead FROM deals WHERE lead > ? ORDER BY lead LIMIT 500", (after,)
        )
    ]:
        after = ids[-1]
        rows = await read_all(
            client,
            "crm.lead.list",
            {"filter": {"@ID": ids}, "select": ["ID", "SOURCE_ID", *UTM]},
        )
        store.conn.executemany(
            "INSERT OR REPLACE INTO leads VALUES (?,?,?,?,?,?,?)",
            [
                (int(r["ID"]), _text(r.get("SOURCE_ID")), *(_text(r.get(u)) for u in UTM))
                for r in rows
            ],
        )


async def find_manager(client: B24Client, given: str) -> int:
    """A manager given by id or by name (``Ирина Смирнова``); an unknown one is a usage
    error naming the portal's users."""
    users = await read_active_users(client)
    if users is None:
        if given.isdigit():
            return int(given)  # the webhook may not read users: the id is taken as given
        raise InputError(f"manager {given!r}: the webhook may not read users; give the id")
    known = {int(u["ID"]): display_name(u) for u in users}
    if given.isdigit() and int(given) in known:
        return int(given)
    folded = " ".join(given.split()).casefold()
    for user_id, name in known.items():
        if name.casefold() == folded or " ".join(reversed(name.split())).casefold() == folded:
            return user_id
    choices = ", ".join(f"{name} ({user_id})" for user_id, name in sorted(known.items()))
    raise InputError(f"unknown manager {given!r}; known: {choices}")


def check_pipelines(scope: Scope, codes: list[str]) -> None:
    for code in codes:
        if code not in scope.codes:
            known = ", ".join(scope.codes)
            raise InputError(f"unknown pipeline {code!r} (a sales direction); known: {known}")


async def read_portal(client: B24Client, scope: Scope, filters: Filters) -> ReportStore:
    """Everything the reports need, into a store (close it when done)."""
    check_pipelines(scope, filters.pipelines)
    manager = await find_manager(client, filters.manager) if filters.manager else None
    store = ReportStore()
    try:
        store.now = datetime.fromisoformat(str(await client.call("server.time")))
        await _stream_deals(client, store, scope, parent_filter(scope, filters, manager))
        children = sorted(scope.children)
        await _stream_deals(client, store, scope, {"@CATEGORY_ID": children})
        await _stream_history(client, store, sorted({*scope.parents, *children}))
        store.finish()
        await _read_leads(client, store)
        await _read_names(client, store, scope)
    except BaseException:
        store.close()
        raise
    return store


async def _read_names(client: B24Client, store: ReportStore, scope: Scope) -> None:
    ids = [r[0] for r in store.query("SELECT DISTINCT assigned FROM deals WHERE assigned > 0")]
    users = await read_users(client, ids) or {}
    store.users = {i: display_name(u) for i, u in users.items()}
    statuses = await read_all(client, "crm.status.list", {"filter": {"ENTITY_ID": "SOURCE"}})
    store.sources = {str(s["STATUS_ID"]): str(s["NAME"]) for s in statuses}
    if scope.directory is not None:
        entries = await read_entries(client, scope.directory)
        store.entries = {i: e.title for i, e in entries.items()}
