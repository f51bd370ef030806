"""What every report is, whatever renders it: named tables of plain values."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ReportTable:
    """One table of a report: ``rows`` are dicts of plain values (str, int, float, None,
    ISO dates as str), keyed by ``columns``, in order. A sequence, not always a list: a
    large table (projects) is read page by page from the report's store; iterate it."""

    name: str  # projects, sources, contractors, estimates, departments
    title: str  # what a person reads above it
    columns: list[str]
    rows: Sequence[dict[str, Any]] = field(default_factory=list)
    empty: str = ""  # why there are no rows, said instead of an empty table

    def column(self, name: str) -> list[Any]:
        return [row.get(name) for row in self.rows]
