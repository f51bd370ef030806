"""The deals of an audit, kept in a temporary SQLite file so memory stays bounded however
many deals the portal has; parent/child joins become indexed queries."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator

from b24kit.links.model import Deal

COLUMNS = "id, category, stage, semantic, parent_ref, child_ref, mirror, assigned, amount"


class DealIndex:
    def __init__(self) -> None:
        # "" is a private on-disk database that SQLite removes when it is closed
        self.conn = sqlite3.connect("")
        self.conn.execute("PRAGMA cache_size = -4000")  # 4 MB of pages at most
        self.conn.execute(f"CREATE TABLE deals ({COLUMNS}, PRIMARY KEY (id)) WITHOUT ROWID")
        self.count = 0

    @classmethod
    def of(cls, deals: Iterable[Deal]) -> DealIndex:
        index = cls()
        index.add(deals)
        index.finish()
        return index

    def add(self, deals: Iterable[Deal]) -> None:
        rows = [
            (
                d.id,
                d.category,
                d.stage,
                d.semantic,
                d.parent_ref,
                d.child_ref,
                d.mirror,
                d.assigned,
                d.amount,
            )
            for d in deals
        ]
        self.conn.executemany(
            f"INSERT OR REPLACE INTO deals ({COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?)", rows
        )
        self.count += len(rows)

    def finish(self) -> None:
        self.conn.execute("CREATE INDEX IF NOT EXISTS by_parent ON deals(parent_ref, category)")
        self.conn.execute("CREATE INDEX IF NOT EXISTS by_child ON deals(child_ref, category)")
        self.conn.execute("CREATE INDEX IF NOT EXISTS by_category ON deals(category, id)")

    @staticmethod
    def _deal(row: tuple[object, ...]) -> Deal:
        return Deal._make(row)

    def get(self, deal_id: int) -> Deal | None:
        row = self.conn.execute(f"SELECT {COLUMNS} FROM deals WHERE id = ?", (deal_id,)).fetchone()
        return None if row is None else self._deal(row)

    def parents_with_children(
        self, parent_category: int, child_category: int
    ) -> Iterator[tuple[Deal, list[Deal]]]:
        """Each parent with its children, from one streaming join (ordered by parent)."""
        pcols = ", ".join(f"p.{c.strip()}" for c in COLUMNS.split(","))
        ccols = ", ".join(f"c.{c.strip()}" for c in COLUMNS.split(","))
        cursor = self.conn.execute(
            f"SELECT {pcols}, {ccols} FROM deals p LEFT JOIN deals c "
            "ON c.parent_ref = p.id AND c.category = ? WHERE p.category = ? "
            "ORDER BY p.id, c.id",
            (child_category, parent_category),
        )
        current: Deal | None = None
        kids: list[Deal] = []
        while rows := cursor.fetchmany(2000):
            for row in rows:
                if current is None or row[0] != current.id:
                    if current is not None:
                        yield current, kids
                    current, kids = Deal._make(row[:9]), []
                if row[9] is not None:
                    kids.append(Deal._make(row[9:]))
        if current is not None:
            yield current, kids

    def children_with_parent(
        self, child_category: int, chunk: int = 2000
    ) -> Iterator[tuple[Deal, Deal | None]]:
        """Each child with the deal its parent field points to (None: points nowhere)."""
        last = -1
        cols = ", ".join(f"c.{c.strip()}" for c in COLUMNS.split(","))
        pcols = ", ".join(f"p.{c.strip()}" for c in COLUMNS.split(","))
        while True:
            rows = self.conn.execute(
                f"SELECT {cols}, {pcols} FROM deals c LEFT JOIN deals p ON p.id = c.parent_ref "
                "WHERE c.category = ? AND c.id > ? ORDER BY c.id LIMIT ?",
                (child_category, last, chunk),
            ).fetchall()
            if not rows:
                return
            for row in rows:
                child = self._deal(row[:9])
                yield child, None if row[9] is None else self._deal(row[9:])
            last = int(rows[-1][0])  # type: ignore[call-overload]

    def chain_starts(self) -> list[Deal]:
        """Deals whose parent is itself linked to a parent: the only places a cycle or a
        nesting can start (usually none)."""
        cols = ", ".join(f"a.{c.strip()}" for c in COLUMNS.split(","))
        return [
            self._deal(r)
            for r in self.conn.execute(
                f"SELECT {cols} FROM deals a JOIN deals b ON b.id = a.parent_ref "
                "WHERE b.parent_ref IS NOT NULL ORDER BY a.id"
            )
        ]

    def claiming(self, child: int, categories: list[int]) -> list[Deal]:
        """The deals of these pipelines whose child field names ``child``."""
        marks = ",".join("?" * len(categories))
        return [
            self._deal(r)
            for r in self.conn.execute(
                f"SELECT {COLUMNS} FROM deals WHERE child_ref = ? AND category IN ({marks}) "
                "ORDER BY id",
                (child, *categories),
            )
        ]

    def all(self) -> Iterator[Deal]:
        last = -1
        while True:
            rows = self.conn.execute(
                f"SELECT {COLUMNS} FROM deals WHERE id > ? ORDER BY id LIMIT 2000", (last,)
            ).fetchall()
            if not rows:
                return
            yield from (self._deal(r) for r in rows)
            last = int(rows[-1][0])  # type: ignore[call-overload]

    def close(self) -> None:
        self.conn.close()
