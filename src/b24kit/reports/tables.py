"""The management tables (issue 14) from a :class:`~b24kit.reports.read.ReportStore`.

- **projects**: one row per parent deal (a project), its first-contact source (the lead it
  was converted from when it names one, else its own SOURCE_ID and UTM), manager, dates,
  each link's child (assignee, stage, hours in it), the estimate (who, hours from the
  parent entering the trigger to the child first reaching the move stage, the quote: the
  parent's recorded quote price, else the estimate child's amount), the contractor, paid
  or not (the estimate's CONTRACTOR_PAID), its rating, the final amount and the cheque's
  growth from the quote, the current stage.
- **sources**: per first-contact source (the source's name, then « / utm_source»).
- **contractors**: per directory entry, from the estimates of the projects read.
- **departments**: per child pipeline and process stage: open items, median and 90th
  percentile hours of the stays in it (a stay still going counts up to now), overdue.

Projects are written into the store as they are made (JSON rows), so a report of 100,000
projects keeps a page of them in memory, not all."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any, overload

from b24kit.reports.read import UTM, Filters, ReportStore, Scope

OWN_VEHICLES = "own vehicles"


def hours(later: str | datetime | None, earlier: str | None) -> float | None:
    if later is None or earlier is None:
        return None
    end = later if isinstance(later, datetime) else datetime.fromisoformat(later)
    return round((end - datetime.fromisoformat(earlier)).total_seconds() / 3600, 2)


def percentile(values: Sequence[float], share: float) -> float:
    """Linear interpolation between the closest ranks (numpy's default, statistics'
    "inclusive" quantiles)."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * share
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


class StoredRows(Sequence[dict[str, Any]]):
    """A table's rows kept in the store: iterated page by page, never all in memory."""

    def __init__(self, store: ReportStore, name: str) -> None:
        self.store = store
        self.table = f"rows_{name}"
        store.conn.execute(f"CREATE TABLE {self.table} (n INTEGER PRIMARY KEY, row TEXT)")
        self.size = 0

    def append(self, row: dict[str, Any]) -> None:
        self.size += 1
        self.store.conn.execute(
            f"INSERT INTO {self.table} VALUES (?, ?)",
            (self.size, json.dumps(row, ensure_ascii=False)),
        )

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for (text,) in self.store.query(f"SELECT row FROM {self.table} ORDER BY n"):
            yield json.loads(text)

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...
    @overload
    def __getitem__(self, index: slice) -> list[dict[str, Any]]: ...
    def __getitem__(self, index: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self.size))]
        if index < 0:
            index += self.size
        found = self.store.one(f"SELECT row FROM {self.table} WHERE n = ?", (index + 1,))
        if found is None:
            raise IndexError(index)
        row: dict[str, Any] = json.loads(found[0])
        return row


# ---------------------------------------------------------------------- projects
def project_columns(scope: Scope) -> list[str]:
    columns = [
        "project",
        "title",
        "direction",
        "manager_id",
        "manager",
        "created",
        "begin",
        "closed",
        "state",
        "outcome",
        "first_contact",
        "source_id",
        "source",
        *(u.lower() for u in UTM),
    ]
    for link in scope.links:
        columns += [f"{link.name}_deal", f"{link.name}_assignee"]
        columns += [f"{link.name}_stage", f"{link.name}_hours_in_stage"]
    columns += ["estimate_by", "estimate_hours", "quote", "quote_at"]
    columns += ["contractor_id", "contractor", "contractor_paid", "contractor_rating"]
    columns += ["final_amount", "growth", "growth_pct"]
    return columns


OUTCOME = {"S": "won", "F": "lost"}
CHILD = "id, category, stage, semantic, assigned, amount, contractor, in_house, "
CHILD += "contractor_price, rating, paid, begin"


class _Projects:
    def __init__(self, store: ReportStore, scope: Scope) -> None:
        self.store, self.scope = store, scope
        self.parent_categories = sorted(scope.parents)

    def child(self, parent: int, category: int) -> dict[str, Any] | None:
        found = self.store.one(
            f"SELECT {CHILD} FROM deals WHERE parent = ? AND category = ? ORDER BY id LIMIT 1",
            (parent, category),
        )
        return None if found is None else dict(zip(CHILD.split(", "), found, strict=True))

    def entered(self, deal: int, stages: Sequence[str], last: bool = False) -> str | None:
        """When the deal entered one of these stages: first time (or the last)."""
        if not stages:
            return None
        marks = ",".join("?" * len(stages))
        found = self.store.one(
            f"SELECT {'MAX' if last else 'MIN'}(at) FROM history WHERE owner = ? "
            f"AND stage IN ({marks})",
            (deal, *stages),
        )
        return None if found is None else found[0]

    def user(self, user_id: int | None) -> str | None:
        if not user_id:
            return None
        return self.store.users.get(user_id) or f"user {user_id}"

    def rows(self) -> Iterator[dict[str, Any]]:
        marks = ",".join("?" * len(self.parent_categories))
        cols = (
            "p.id, p.title, p.category, p.stage, p.semantic, p.assigned, p.amount, p.created, "
            "p.begin, p.closed, p.lead, p.quote_price, p.quote_at, l.id, "
            "COALESCE(l.source, p.source), "
            + ", ".join(
                f"CASE WHEN l.id IS NULL THEN p.{u.lower()} ELSE l.{u.lower()} END" for u in UTM
            )
        )
        for row in self.store.query(
            f"SELECT {cols} FROM deals p LEFT JOIN leads l ON l.id = p.lead "
            f"WHERE p.category IN ({marks}) ORDER BY p.id",
            tuple(self.parent_categories),
        ):
            yield self.project(row)

    def project(self, row: tuple[Any, ...]) -> dict[str, Any]:
        (pid, title, category, stage, semantic, assigned, amount, created, begin, closed) = row[:10]
        lead, quote_price, quote_at, lead_found, source = row[10:15]
        scope = self.scope
        out: dict[str, Any] = {
            "project": pid,
            "title": title,
            "direction": scope.parents[category].name,
            "manager_id": assigned,
            "manager": self.user(assigned),
            "created": (created or "")[:10] or None,
            "begin": begin,
            "closed": closed if semantic != "P" else None,
            "state": scope.stage_name(stage),
            "outcome": OUTCOME.get(semantic, "open"),
            "first_contact": f"lead {lead}" if lead_found else "deal",
            "source_id": source,
            "source": self.store.sources.get(source or "", source),
        }
        out.update({u.lower(): v for u, v in zip(UTM, row[15:], strict=True)})
        estimate: dict[str, Any] | None = None
        for link in scope.links:
            kid = self.child(pid, link.child.id)
            if link is scope.estimate:
                estimate = kid
            out[f"{link.name}_deal"] = kid["id"] if kid else None
            out[f"{link.name}_assignee"] = self.user(kid["assigned"]) if kid else None
            out[f"{link.name}_stage"] = scope.stage_name(kid["stage"]) if kid else None
            since = self.entered(kid["id"], [kid["stage"]], last=True) if kid else None
            out[f"{link.name}_hours_in_stage"] = hours(self.store.now, since)
        out.update(self.estimate(pid, category, estimate, quote_price, quote_at))
        quote = out["quote"]
        out["final_amount"] = amount
        out["growth"] = round(amount - quote, 2) if quote is not None else None
        out["growth_pct"] = round((amount - quote) / quote * 100, 1) if quote else None
        return out

    def estimate(
        self,
        pid: int,
        category: int,
        kid: dict[str, Any] | None,
        quote_price: float | None,
        quote_at: str | None,
    ) -> dict[str, Any]:
        link = self.scope.estimate
        out: dict[str, Any] = {"estimate_by": None, "estimate_hours": None}
        out["quote"] = quote_price if quote_price is not None else (kid or {}).get("amount")
        out["quote_at"] = quote_at
        out.update(
            contractor_id=None, contractor=None, contractor_paid=None, contractor_rating=None
        )
        if kid is None:
            return out
        trigger = link.trigger_of(category)
        began = self.entered(pid, [trigger]) if trigger else None
        out["estimate_by"] = self.user(kid["assigned"])
        out["estimate_hours"] = hours(self.entered(kid["id"], link.done_stages()), began)
        entry = kid["contractor"]
        if entry is not None:
            out["contractor_id"] = entry
            out["contractor"] = self.store.entries.get(entry, f"entry {entry}")
            out["contractor_paid"] = "yes" if kid["paid"] == 1 else "no"
        elif kid["in_house"] == 1:
            out["contractor"] = OWN_VEHICLES
        out["contractor_rating"] = kid["rating"]
        return out


def build_projects(store: ReportStore, scope: Scope) -> StoredRows:
    rows = StoredRows(store, "projects")
    for row in _Projects(store, scope).rows():
        rows.append(row)
    return rows


# ------------------------------------------------------------------ aggregates
SOURCE_COLUMNS = [
    "source",
    "source_id",
    "utm_source",
    "projects",
    "won",
    "revenue",
    "average_growth",
    "average_growth_pct",
    "conversion_pct",
]


class Mean:
    """A running mean: the count and the sum, never the values (a table of 100,000
    projects keeps one per group)."""

    __slots__ = ("n", "total")

    def __init__(self) -> None:
        self.n, self.total = 0, 0.0

    def add(self, value: float | None) -> None:
        if value is not None:
            self.n += 1
            self.total += value

    def value(self, digits: int) -> float | None:
        return round(self.total / self.n, digits) if self.n else None


def build_sources(projects: Iterator[dict[str, Any]] | StoredRows) -> list[dict[str, Any]]:
    """Per first-contact source: projects, won, revenue (won final amounts), the average
    growth of the cheque over projects with a quote (money and %), conversion (won / all)."""
    groups: dict[tuple[str, str | None, str | None], dict[str, Any]] = {}
    for p in projects:
        label = str(p["source"] or "no source") + (
            f" / {p['utm_source']}" if p["utm_source"] else ""
        )
        g = groups.setdefault(
            (label, p["source_id"], p["utm_source"]),
            {"projects": 0, "won": 0, "revenue": 0.0, "growth": Mean(), "pct": Mean()},
        )
        g["projects"] += 1
        if p["outcome"] == "won":
            g["won"] += 1
            g["revenue"] += p["final_amount"]
        g["growth"].add(p["growth"])
        g["pct"].add(p["growth_pct"])
    rows = [
        {
            "source": label,
            "source_id": source_id,
            "utm_source": utm,
            "projects": g["projects"],
            "won": g["won"],
            "revenue": round(g["revenue"], 2),
            "average_growth": g["growth"].value(2),
            "average_growth_pct": g["pct"].value(1),
            "conversion_pct": round(g["won"] / g["projects"] * 100, 1),
        }
        for (label, source_id, utm), g in groups.items()
    ]
    return sorted(rows, key=lambda r: (-r["projects"], r["source"]))


CONTRACTOR_COLUMNS = [
    "contractor_id",
    "contractor",
    "estimates",
    "won",
    "average_price",
    "average_rating",
    "unpaid",
    "last_used",
]


def build_contractors(store: ReportStore, scope: Scope) -> list[dict[str, Any]]:
    """Per directory entry, over the estimates of the projects read: estimates naming it,
    won (their project won), average contractor price and rating, unpaid (won projects
    whose estimate is not marked paid), last used (the latest estimate's date)."""
    link = scope.estimate
    marks = ",".join("?" * len(scope.parents))
    stats: dict[int, dict[str, Any]] = defaultdict(
        lambda: {"n": 0, "won": 0, "price": Mean(), "rating": Mean(), "unpaid": 0, "last": None}
    )
    for entry, price, rating, paid, begin, parent_semantic in store.query(
        "SELECT c.contractor, c.contractor_price, c.rating, c.paid, c.begin, p.semantic "
        "FROM deals c JOIN deals p ON p.id = c.parent "
        f"WHERE c.category = ? AND c.contractor IS NOT NULL AND p.category IN ({marks}) "
        "AND c.id = (SELECT MIN(x.id) FROM deals x WHERE x.parent = p.id AND x.category = ?)",
        (link.child.id, *scope.parents, link.child.id),
    ):
        s = stats[entry]
        s["n"] += 1
        won = parent_semantic == "S"
        s["won"] += won
        s["unpaid"] += won and paid != 1
        s["price"].add(price)
        s["rating"].add(rating)
        s["last"] = max(filter(None, (s["last"], begin)), default=None)
    ids = set(store.entries) | set(stats)
    rows = [
        {
            "contractor_id": i,
            "contractor": store.entries.get(i, f"entry {i}"),
            "estimates": stats[i]["n"] if i in stats else 0,
            "won": stats[i]["won"] if i in stats else 0,
            "average_price": stats[i]["price"].value(2) if i in stats else None,
            "average_rating": stats[i]["rating"].value(2) if i in stats else None,
            "unpaid": stats[i]["unpaid"] if i in stats else 0,
            "last_used": stats[i]["last"] if i in stats else None,
        }
        for i in ids
    ]
    return sorted(rows, key=lambda r: (-r["estimates"], r["contractor"], r["contractor_id"]))


DEPARTMENT_COLUMNS = [
    "department",
    "stage",
    "open",
    "stays",
    "median_hours",
    "p90_hours",
    "overdue",
]


def build_departments(store: ReportStore, scope: Scope, filters: Filters) -> list[dict[str, Any]]:
    """Per child pipeline and process stage: items open in it now, the stays measured
    (a stay ends when the item moves on; one still going counts up to now), their median
    and 90th-percentile hours, and overdue items (open, in the stage longer than
    ``filters.overdue_days``). With a filter, only children of the projects read count."""
    now = store.now.isoformat()
    parents = ",".join(str(c) for c in scope.parents)
    only = f"AND d.parent IN (SELECT id FROM deals WHERE category IN ({parents}))"
    only = only if filters.any else ""
    store.conn.execute("CREATE TABLE IF NOT EXISTS stays (category, stage, hours REAL)")
    store.conn.execute("DELETE FROM stays")
    children = sorted(scope.children)
    store.conn.execute(
        "INSERT INTO stays SELECT category, stage, hours FROM ("
        "SELECT d.category AS category, h.stage AS stage, (julianday(COALESCE("
        "  LEAD(h.at) OVER (PARTITION BY h.owner ORDER BY h.at, h.rowid),"
        "  CASE WHEN d.semantic = 'P' THEN ? END)) - julianday(h.at)) * 24 AS hours "
        f"FROM history h JOIN deals d ON d.id = h.owner "
        f"WHERE d.category IN ({','.join('?' * len(children))}) {only}) WHERE hours IS NOT NULL",
        (now, *children),
    )
    store.conn.execute("CREATE INDEX IF NOT EXISTS stays_by ON stays(category, stage, hours)")
    limit = filters.overdue_days * 24
    rows = []
    for category in children:
        link, pipeline = scope.children[category]
        for stage in sorted(pipeline.stages, key=lambda s: s.sort):
            if stage.semantics not in ("process", "P"):
                continue
            rows.append(
                _department_row(store, pipeline.name, category, stage.status_id, stage.name, only)
                | {"overdue": _overdue(store, category, stage.status_id, limit, only)}
            )
    return rows


def _department_row(
    store: ReportStore, department: str, category: int, stage: str, name: str, only: str
) -> dict[str, Any]:
    found = store.one(
        f"SELECT COUNT(*) FROM deals d WHERE d.category = ? AND d.stage = ? "
        f"AND d.semantic = 'P' {only}",
        (category, stage),
    )
    n_row = store.one(
        "SELECT COUNT(*) FROM stays WHERE category = ? AND stage = ?", (category, stage)
    )
    n = int(n_row[0]) if n_row else 0

    def at(share: float) -> float | None:
        if n == 0:
            return None
        position = (n - 1) * share
        low = int(position)
        values = [
            v
            for (v,) in store.query(
                "SELECT hours FROM stays WHERE category = ? AND stage = ? ORDER BY hours "
                "LIMIT 2 OFFSET ?",
                (category, stage, low),
            )
        ]
        high = values[1] if len(values) > 1 else values[0]
        return round(float(values[0] + (high - values[0]) * (position - low)), 2)

    return {
        "department": department,
        "stage": name,
        "open": int(found[0]) if found else 0,
        "stays": n,
        "median_hours": at(0.5),
        "p90_hours": at(0.9),
    }


def _overdue(store: ReportStore, category: int, stage: str, limit: float, only: str) -> int:
    found = store.one(
        "SELECT COUNT(*) FROM deals d WHERE d.category = ? AND d.stage = ? AND d.semantic = 'P' "
        f"{only} AND (julianday(?) - julianday((SELECT MAX(at) FROM history h "
        "WHERE h.owner = d.id AND h.stage = d.stage))) * 24 > ?",
        (category, stage, store.now.isoformat(), limit),
    )
    return int(found[0]) if found else 0
