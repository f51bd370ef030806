"""The management report written to a Google Sheet (issue 14, ``--to-sheet KEY``).

Each table goes to the worksheet named after it (projects, sources, ...), made when the
spreadsheet does not have it yet, and rewritten in place on every run: the grid is sized
to the table (so a run with fewer rows leaves no stale rows behind), the values cleared,
then written, with the header row frozen. The worksheets b24kit writes are its own: what
a person types into them is gone at the next run; the spreadsheet's other worksheets are
never touched. A cron line running ``report ... --to-sheet KEY`` keeps the sheet current.

Values are written RAW: a name from the portal that starts with ``=`` stays text and is
never run as a formula; numbers stay numbers; dates stay ISO text (2024-05-01).

A run costs a fixed number of calls, whatever the number of tables: two reads of the
spreadsheet's metadata (gspread's open, then the worksheets), one batchUpdate making and
sizing the worksheets, one values:batchClear and one values:batchUpdate (more only past
``CELLS_PER_CALL`` cells), well within the Sheets API's per-minute write quota.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from b24kit.reports.model import ReportTable

if TYPE_CHECKING:
    import gspread

CELLS_PER_CALL = 100_000  # keeps a request's body to a few megabytes


@dataclass
class Written:
    """One worksheet as the run left it."""

    title: str
    rows: int  # data rows, the header not counted
    columns: int
    created: bool  # made by this run (else: rewritten in place)
    sheet_id: int


def value(cell: Any) -> Any:
    """A table cell as the Sheets API takes it: numbers, booleans and text; an empty cell
    is "" (a null would leave the old value in place)."""
    if cell is None:
        return ""
    if isinstance(cell, bool | int | str):
        return cell
    if isinstance(cell, float):
        return cell if math.isfinite(cell) else ""
    return str(cell)


def grid(table: ReportTable) -> list[list[Any]]:
    """The worksheet's values: the header, then the rows; a table with no rows says why
    in its second row."""
    rows = [[value(row.get(c)) for c in table.columns] for row in table.rows]
    if not rows and table.empty:
        rows = [[table.empty] + [""] * (len(table.columns) - 1)]
    return [list(table.columns), *rows]


def quoted(title: str) -> str:
    """A worksheet title as an A1 range names it: ``'It''s'``."""
    return "'" + title.replace("'", "''") + "'"


def chunks(title: str, values: list[list[Any]]) -> Iterator[dict[str, Any]]:
    """The values of one worksheet as value ranges of at most ``CELLS_PER_CALL`` cells."""
    width = max(1, len(values[0]))
    step = max(1, CELLS_PER_CALL // width)
    for start in range(0, len(values), step):
        yield {
            "range": f"{quoted(title)}!A{start + 1}",
            "majorDimension": "ROWS",
            "values": values[start : start + step],
        }


def _sizing(sheet_id: int, rows: int, columns: int) -> dict[str, Any]:
    return {
        "updateSheetProperties": {
            "properties": {
                "sheetId": sheet_id,
                "gridProperties": {
                    "rowCount": rows,
                    "columnCount": columns,
                    "frozenRowCount": 1 if rows > 1 else 0,
                },
            },
            "fields": "gridProperties.rowCount,gridProperties.columnCount,"
            "gridProperties.frozenRowCount",
        }
    }


def _adding(title: str, rows: int, columns: int) -> dict[str, Any]:
    return {
        "addSheet": {
            "properties": {
                "title": title,
                "sheetType": "GRID",
                "gridProperties": {
                    "rowCount": rows,
                    "columnCount": columns,
                    "frozenRowCount": 1 if rows > 1 else 0,
                },
            }
        }
    }


def batches(data: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    """Value ranges grouped into calls of at most ``CELLS_PER_CALL`` cells each."""
    batch: list[dict[str, Any]] = []
    cells = 0
    for value_range in data:
        size = sum(len(row) for row in value_range["values"])
        if batch and cells + size > CELLS_PER_CALL:
            yield batch
            batch, cells = [], 0
        batch.append(value_range)
        cells += size
    if batch:
        yield batch


def write_tables(client: gspread.Client, key: str, tables: list[ReportTable]) -> list[Written]:
    """Write ``tables`` to the Google Sheet ``key`` through gspread (a client as
    migrate.sources.gspread_client makes it), one worksheet per table, named by ``table.name`` (an existing
    worksheet of that name in another case is the same one: Sheets compares names so)."""
    spreadsheet = client.open_by_key(key)
    existing = {ws.title.lower(): (ws.title, int(ws.id)) for ws in spreadsheet.worksheets()}
    grids: dict[str, list[list[Any]]] = {}
    requests = []
    for table in tables:
        title, sheet_id = existing.get(table.name.lower(), (table.name, None))
        values = grids[title] = grid(table)
        rows, columns = len(values), max(1, len(values[0]))
        if sheet_id is None:
            requests.append(_adding(title, rows, columns))
        else:
            requests.append(_sizing(sheet_id, rows, columns))
    ids = {title: sheet_id for title, sheet_id in existing.values()}
    for reply in spreadsheet.batch_update({"requests": requests}).get("replies", []):
        if "addSheet" in reply:
            props = reply["addSheet"]["properties"]
            ids[props["title"]] = int(props["sheetId"])
    spreadsheet.values_batch_clear(body={"ranges": [quoted(title) for title in grids]})
    data = [chunk for title, values in grids.items() for chunk in chunks(title, values)]
    for batch in batches(data):
        spreadsheet.values_batch_update(body={"valueInputOption": "RAW", "data": batch})
    written = []
    for table in tables:
        title = existing.get(table.name.lower(), (table.name, 0))[0]
        created = table.name.lower() not in existing
        written.append(Written(title, len(table.rows), len(table.columns), created, ids[title]))
    return written
