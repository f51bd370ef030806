"""One client is one entity (issue 10, item 3): the sheet's rows are grouped by every
identifier they share (phones, e-mails), transitively and whatever the rows' order,
before anything is written. A group gets all of its phones and e-mails and one name;
rows of one group that name the client differently are reported as a conflict.

Pure functions over the rows' identifiers: no portal, no mapping."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field


def identifier(value: str) -> str:
    """The key a phone or an e-mail is compared by: a phone's digits, an e-mail lowercased."""
    return re.sub(r"\D", "", value) if value.startswith("+") else value.strip().lower()


@dataclass
class Client:
    """A group of rows that are one client."""

    key: str  # the group's smallest identifier (or its first row's id): stable in any order
    rows: list[str]  # row ids, in sheet order
    names: Counter[str] = field(default_factory=Counter)  # name as written -> rows
    phones: list[str] = field(default_factory=list)  # E.164, sorted
    emails: list[str] = field(default_factory=list)  # lowercased, sorted

    @property
    def identifiers(self) -> list[str]:
        return [identifier(v) for v in (*self.phones, *self.emails)]

    @property
    def name(self) -> str | None:
        """The name most rows give; on a tie the first in alphabetical order (never the
        first row's, which would depend on the order)."""
        if not self.names:
            return None
        best = max(self.names.values())
        return min(n for n, count in self.names.items() if count == best)

    @property
    def conflict(self) -> str | None:
        """Two or more different names for one client, in words."""
        distinct = {_same_name(n) for n in self.names}
        if len(distinct) < 2:
            return None
        shown = ", ".join(f"«{n}»" for n in sorted(self.names))
        return f"one client ({', '.join(self.phones + self.emails) or self.key}) named {shown}"


def _same_name(name: str) -> str:
    return re.sub(r"\s+", " ", name.strip().lower().replace("ё", "е"))


class _Sets:
    """Union-find over identifiers."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, item: str) -> str:
        self.parent.setdefault(item, item)
        root = item
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[item] != root:  # path compression
            self.parent[item], item = root, self.parent[item]
        return root

    def join(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)  # the smaller one leads: order-free


@dataclass(frozen=True)
class ClientRow:
    """What a row says about its client."""

    row_id: str
    name: str | None
    phones: tuple[str, ...]
    emails: tuple[str, ...]


def group_clients(rows: Iterable[ClientRow]) -> dict[str, Client]:
    """Row id -> its client. Rows sharing a phone or an e-mail, directly or through other
    rows, are one client; a row with neither is a client of its own."""
    keyed = [
        (row, [identifier(v) for v in (*row.phones, *row.emails)] or [f"row:{row.row_id}"])
        for row in rows
    ]
    sets = _Sets()
    for _, ids in keyed:
        for other in ids[1:]:
            sets.join(ids[0], other)
        sets.find(ids[0])
    clients: dict[str, Client] = {}
    by_row: dict[str, Client] = {}
    for row, ids in keyed:
        root = sets.find(ids[0])
        client = clients.setdefault(root, Client(root, []))
        client.rows.append(row.row_id)
        if row.name:
            client.names[row.name.strip()] += 1
        client.phones = sorted({*client.phones, *row.phones})
        client.emails = sorted({*client.emails, *(e.lower() for e in row.emails)})
        by_row[row.row_id] = client
    return by_row
