"""A local stand-in for the Google Sheets v4 endpoints gspread calls to read a sheet
(migrate) and to write one (report --to-sheet):

- ``GET  /v4/spreadsheets/{id}``: metadata, with merges and grid sizes;
- ``GET  /v4/spreadsheets/{id}/values/{range}``: values, FORMATTED or UNFORMATTED;
- ``PUT  /v4/spreadsheets/{id}/values/{range}``: values.update;
- ``POST /v4/spreadsheets/{id}/values/{range}:clear``: values.clear;
- ``POST /v4/spreadsheets/{id}/values:batchUpdate`` and ``values:batchClear``;
- ``POST /v4/spreadsheets/{id}:batchUpdate`` with ``addSheet``, ``updateSheetProperties``
  (title, index, grid size, frozen rows and columns) and ``deleteSheet``.

Spreadsheets are kept in memory: ``sheets.add(id, title, {worksheet: rows}, merges)``.
As the real API does, reads trim trailing empty cells and rows, a null in written values
leaves its cell alone ("" empties it), a write outside the sheet's grid is refused, and a
batchUpdate is all or nothing. What could not be checked against the real service is
listed in docs/sandbox.md (Sheets stand-in).
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote

CELLS = re.compile(r"^(?P<c1>[A-Za-z]+)?(?P<r1>\d+)?(?::(?P<c2>[A-Za-z]+)?(?P<r2>\d+)?)?$")
NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
DEFAULT_ROWS, DEFAULT_COLUMNS = 1000, 26


class SheetsError(Exception):
    def __init__(self, code: int, message: str, status: str = "INVALID_ARGUMENT") -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


def col_number(letters: str) -> int:
    n = 0
    for ch in letters.upper():
        n = n * 26 + ord(ch) - 64
    return n


def col_letters(number: int) -> str:
    letters = ""
    while number:
        number, rest = divmod(number - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


@dataclass
class Worksheet:
    title: str
    rows: list[list[Any]]
    merges: list[tuple[int, int, int, int]] = field(default_factory=list)  # 0-based, end excl.
    sheet_id: int = 0
    row_count: int = 0  # the grid; 0: sized from the rows as a new sheet would be
    column_count: int = 0
    frozen_rows: int = 0
    frozen_columns: int = 0

    def __post_init__(self) -> None:
        self.row_count = self.row_count or max(len(self.rows), DEFAULT_ROWS)
        widest = max((len(r) for r in self.rows), default=0)
        self.column_count = self.column_count or max(widest, DEFAULT_COLUMNS)

    def quoted(self) -> str:
        return "'" + self.title.replace("'", "''") + "'"

    def a1(self, r1: int, c1: int, r2: int, c2: int) -> str:
        """``'Title'!A1:C5`` for 0-based, end-exclusive bounds."""
        return f"{self.quoted()}!{col_letters(c1 + 1)}{r1 + 1}:{col_letters(c2)}{r2}"

    def properties(self, index: int) -> dict[str, Any]:
        grid: dict[str, int] = {"rowCount": self.row_count, "columnCount": self.column_count}
        # proto3 JSON leaves zero values out, as the real API does
        if self.frozen_rows:
            grid["frozenRowCount"] = self.frozen_rows
        if self.frozen_columns:
            grid["frozenColumnCount"] = self.frozen_columns
        return {
            "sheetId": self.sheet_id,
            "title": self.title,
            "index": index,
            "sheetType": "GRID",
            "gridProperties": grid,
        }

    def set(self, row: int, column: int, value: Any) -> None:
        while len(self.rows) <= row:
            self.rows.append([])
        cells = self.rows[row]
        while len(cells) <= column:
            cells.append("")
        cells[column] = value

    def crop(self) -> None:
        """Drop the values outside the grid (after the grid shrank)."""
        del self.rows[self.row_count :]
        for i, row in enumerate(self.rows):
            self.rows[i] = row[: self.column_count]


@dataclass
class Spreadsheet:
    id: str
    title: str
    worksheets: list[Worksheet]

    def by_title(self, title: str) -> Worksheet | None:
        return next((w for w in self.worksheets if w.title == title), None)

    def by_id(self, sheet_id: Any) -> Worksheet:
        found = next((w for w in self.worksheets if w.sheet_id == sheet_id), None)
        if found is None:
            raise SheetsError(400, f"No grid with id: {sheet_id}")
        return found


@dataclass
class Area:
    """A range resolved on one worksheet: 0-based bounds, ends exclusive, None = open."""

    sheet: Worksheet
    r1: int
    c1: int
    r2: int | None
    c2: int | None

    def clipped(self) -> tuple[int, int, int, int]:
        rows, cols = self.sheet.row_count, self.sheet.column_count
        return self.r1, self.c1, min(self.r2 or rows, rows), min(self.c2 or cols, cols)


def _split(a1: str) -> tuple[str | None, str]:
    """``'It''s'!A1:B2`` -> ("It's", "A1:B2"); ``Лист1!A1`` -> ("Лист1", "A1");
    ``A1:B2`` -> (None, "A1:B2"); ``'Лист1'`` -> ("Лист1", "")."""
    if a1.startswith("'"):
        i, title = 1, ""
        while i < len(a1):
            if a1[i] == "'" and a1[i + 1 : i + 2] == "'":
                title, i = title + "'", i + 2
            elif a1[i] == "'":
                rest = a1[i + 1 :]
                if rest and not rest.startswith("!"):
                    break
                return title, rest[1:]
            else:
                title, i = title + a1[i], i + 1
        raise SheetsError(400, f"Unable to parse range: {a1}")
    if "!" in a1:
        title, _, cells = a1.rpartition("!")
        return title, cells
    return None, a1


def resolve(book: Spreadsheet, a1: str) -> Area:
    title, cells = _split(a1)
    if title is None and book.by_title(a1) is not None:
        title, cells = a1, ""  # a bare worksheet title is the whole worksheet
    sheet = book.worksheets[0] if title is None else book.by_title(title)
    match = CELLS.match(cells)
    if sheet is None or match is None:
        raise SheetsError(400, f"Unable to parse range: {a1}")
    if not cells:
        return Area(sheet, 0, 0, None, None)
    g = match.groupdict()
    r1 = int(g["r1"]) - 1 if g["r1"] else 0
    c1 = col_number(g["c1"]) - 1 if g["c1"] else 0
    if ":" not in cells:  # one cell: A1 (as a write's start: open to the right and down)
        return Area(sheet, r1, c1, r1 + 1 if g["r1"] else None, c1 + 1 if g["c1"] else None)
    r2 = int(g["r2"]) if g["r2"] else None
    c2 = col_number(g["c2"]) if g["c2"] else None
    return Area(sheet, r1, c1, r2, c2)


def _formatted(value: Any) -> Any:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "" if value is None else str(value)


def _trim(rows: list[list[Any]]) -> list[list[Any]]:
    out = []
    for row in rows:
        row = list(row)
        while row and row[-1] in ("", None):
            row.pop()
        out.append(row)
    while out and not out[-1]:
        out.pop()
    return out


def _entered(value: Any, option: str) -> Any:
    """A written value as the sheet keeps it: RAW as it is; USER_ENTERED parsed as if
    typed (numbers, TRUE/FALSE; a leading ' keeps text; formulas kept, not computed)."""
    if option == "RAW" or not isinstance(value, str):
        return value
    if value.startswith("'"):
        return value[1:]
    if NUMBER.match(value.strip()):
        number = float(value)
        return int(number) if number.is_integer() and "." not in value else number
    if value.upper() in ("TRUE", "FALSE"):
        return value.upper() == "TRUE"
    return value


class FakeSheets:
    def __init__(self) -> None:
        self.spreadsheets: dict[str, Spreadsheet] = {}
        self.requests = 0
        self.calls: list[str] = []  # "GET values", "POST :batchUpdate", ...: what was asked

    def add(
        self,
        key: str,
        title: str,
        worksheets: dict[str, list[list[Any]]],
        merges: dict[str, list[tuple[int, int, int, int]]] | None = None,
    ) -> None:
        sheets = [
            Worksheet(name, [list(r) for r in rows], (merges or {}).get(name, []), i)
            for i, (name, rows) in enumerate(worksheets.items())
        ]
        self.spreadsheets[key] = Spreadsheet(key, title, sheets)

    def handles(self, path: str) -> bool:
        return path.startswith("/v4/spreadsheets/")

    def handle(
        self, path: str, query: str, method: str = "GET", body: bytes = b""
    ) -> tuple[int, bytes]:
        self.requests += 1
        params = {k: v[-1] for k, v in parse_qs(query).items()}
        try:
            data = json.loads(body) if body else {}
        except ValueError:
            return self._error(400, "Invalid JSON payload received.", "INVALID_ARGUMENT")
        try:
            return 200, self._json(self._route(method.upper(), path, params, data))
        except SheetsError as exc:
            return self._error(exc.code, exc.message, exc.status)

    def _route(
        self, method: str, path: str, params: dict[str, str], data: dict[str, Any]
    ) -> dict[str, Any]:
        rest = path[len("/v4/spreadsheets/") :]
        key, _, tail = rest.partition("/")
        key, _, verb = unquote(key).partition(":")
        book = self.spreadsheets.get(key)
        if book is None:
            raise SheetsError(404, "Requested entity was not found.", "NOT_FOUND")
        if not tail:
            self.calls.append(f"{method} {':' + verb if verb else 'spreadsheet'}")
            if method == "GET" and not verb:
                return self._metadata(book)
            if method == "POST" and verb == "batchUpdate":
                return self._batch_update(book, data)
        elif tail.startswith("values:"):
            verb = tail[len("values:") :]
            self.calls.append(f"{method} values:{verb}")
            if method == "POST" and verb == "batchUpdate":
                return self._values_batch_update(book, data)
            if method == "POST" and verb == "batchClear":
                cleared = [self._clear(book, a1) for a1 in data.get("ranges", [])]
                return {"spreadsheetId": book.id, "clearedRanges": cleared}
        elif tail.startswith("values/"):
            a1 = unquote(tail[len("values/") :])
            verb = "clear" if method == "POST" and a1.endswith(":clear") else ""
            self.calls.append(f"{method} values{':' + verb if verb else ''}")
            if method == "GET":
                return self._values(book, a1, params)
            if method == "PUT":
                option = self._input_option(params.get("valueInputOption"))
                return self._write(book, a1, data, option, params)
            if verb == "clear":
                return {"spreadsheetId": book.id, "clearedRange": self._clear(book, a1[:-6])}
        raise SheetsError(400, f"unsupported call {method} {path}")

    @staticmethod
    def _json(data: Any) -> bytes:
        return json.dumps(data, ensure_ascii=False).encode()

    def _error(self, code: int, message: str, status: str) -> tuple[int, bytes]:
        return code, self._json({"error": {"code": code, "message": message, "status": status}})

    @staticmethod
    def _metadata(book: Spreadsheet) -> dict[str, Any]:
        return {
            "spreadsheetId": book.id,
            "properties": {"title": book.title, "locale": "ru_RU", "timeZone": "Europe/Moscow"},
            "sheets": [
                {
                    "properties": ws.properties(i),
                    "merges": [
                        {
                            "sheetId": ws.sheet_id,
                            "startRowIndex": a,
                            "endRowIndex": b,
                            "startColumnIndex": c,
                            "endColumnIndex": d,
                        }
                        for a, b, c, d in ws.merges
                    ],
                }
                for i, ws in enumerate(book.worksheets)
            ],
            "spreadsheetUrl": f"https://docs.google.com/spreadsheets/d/{book.id}/edit",
        }

    def _values(self, book: Spreadsheet, a1: str, params: dict[str, str]) -> dict[str, Any]:
        area = resolve(book, a1)
        r1, c1, r2, c2 = area.clipped()
        rows = [row[c1:c2] for row in area.sheet.rows[r1:r2]]
        if params.get("valueRenderOption") != "UNFORMATTED_VALUE":
            rows = [[_formatted(v) for v in row] for row in rows]
        values = _trim(rows)
        answer: dict[str, Any] = {"range": area.sheet.a1(r1, c1, r2, c2), "majorDimension": "ROWS"}
        if values:  # an empty range has no "values" key at all
            answer["values"] = values
        return answer

    @staticmethod
    def _input_option(option: str | None) -> str:
        if option is None:
            raise SheetsError(400, "'valueInputOption' is required but not specified")
        if option not in ("RAW", "USER_ENTERED"):
            raise SheetsError(400, f"Invalid value at 'value_input_option' (\"{option}\")")
        return option

    def _clear(self, book: Spreadsheet, a1: str) -> str:
        area = resolve(book, a1)
        r1, c1, r2, c2 = area.clipped()
        for row in area.sheet.rows[r1:r2]:
            for c in range(c1, min(c2, len(row))):
                row[c] = ""
        return area.sheet.a1(r1, c1, r2, c2)

    @staticmethod
    def _cells(area: Area, a1: str, values: list[list[Any]]) -> tuple[int, int]:
        """Check that ``values`` fit the range and the grid; their height and width."""
        height, width = len(values), max((len(r) for r in values), default=0)
        if area.r2 is not None and area.r1 + height > area.r2:
            raise SheetsError(
                400,
                f"Requested writing within range [{a1}], but tried writing to row "
                f"[{area.r1 + height}]",
            )
        if area.c2 is not None and area.c1 + width > area.c2:
            raise SheetsError(
                400,
                f"Requested writing within range [{a1}], but tried writing to column "
                f"[{col_letters(area.c1 + width)}]",
            )
        sheet = area.sheet
        if area.r1 + height > sheet.row_count or area.c1 + width > sheet.column_count:
            end = sheet.a1(area.r1, area.c1, area.r1 + height, area.c1 + width)
            raise SheetsError(
                400,
                f"Range ({end}) exceeds grid limits. Max rows: {sheet.row_count}, "
                f"max columns: {sheet.column_count}",
            )
        return height, width

    def _prepare(
        self, book: Spreadsheet, value_range: dict[str, Any], a1: str, option: str
    ) -> tuple[Area, list[list[Any]], dict[str, Any]]:
        values = value_range.get("values") or []
        if value_range.get("majorDimension") == "COLUMNS":
            width = max((len(c) for c in values), default=0)
            values = [[c[i] if i < len(c) else None for c in values] for i in range(width)]
        area = resolve(book, a1)
        area = Area(area.sheet, area.r1, area.c1, area.r2, area.c2)
        if (a1.count(":") == 0) and area.r2 is not None and area.c2 is not None:
            area.r2 = area.c2 = None  # a single cell is where writing starts
        height, width = self._cells(area, a1, values)
        response = {
            "spreadsheetId": book.id,
            "updatedRange": area.sheet.a1(area.r1, area.c1, area.r1 + height, area.c1 + width),
            "updatedRows": height,
            "updatedColumns": width,
            "updatedCells": sum(1 for row in values for v in row if v is not None),
        }
        rows = [[None if v is None else _entered(v, option) for v in row] for row in values]
        return area, rows, response

    @staticmethod
    def _apply(area: Area, rows: list[list[Any]]) -> None:
        for i, row in enumerate(rows):
            for j, value in enumerate(row):
                if value is not None:  # null: leave the cell as it is
                    area.sheet.set(area.r1 + i, area.c1 + j, value)

    def _write(
        self,
        book: Spreadsheet,
        a1: str,
        data: dict[str, Any],
        option: str,
        params: dict[str, str],
    ) -> dict[str, Any]:
        area, rows, response = self._prepare(book, data, a1, option)
        self._apply(area, rows)
        if params.get("includeValuesInResponse") in ("true", "True", "1"):
            response["updatedData"] = {"range": response["updatedRange"], "values": rows}
        return response

    def _values_batch_update(self, book: Spreadsheet, data: dict[str, Any]) -> dict[str, Any]:
        option = self._input_option(data.get("valueInputOption"))
        # every range is checked before any is written: the call is all or nothing
        prepared = [self._prepare(book, vr, vr.get("range", ""), option) for vr in data["data"]]
        for area, rows, _ in prepared:
            self._apply(area, rows)
        responses = [response for _, _, response in prepared]
        return {
            "spreadsheetId": book.id,
            "totalUpdatedRows": sum(r["updatedRows"] for r in responses),
            "totalUpdatedColumns": sum(r["updatedColumns"] for r in responses),
            "totalUpdatedCells": sum(r["updatedCells"] for r in responses),
            "totalUpdatedSheets": len({area.sheet.sheet_id for area, _, _ in prepared}),
            "responses": responses,
        }

    # spreadsheets.batchUpdate ---------------------------------------------------------

    def _batch_update(self, book: Spreadsheet, data: dict[str, Any]) -> dict[str, Any]:
        draft = copy.deepcopy(book)  # all or nothing: the requests run on a copy
        replies = []
        for i, request in enumerate(data.get("requests", [])):
            if len(request) != 1:
                raise SheetsError(400, f"Invalid requests[{i}]: one kind of request expected")
            ((kind, body),) = request.items()
            handler = {
                "addSheet": self._add_sheet,
                "updateSheetProperties": self._update_sheet,
                "deleteSheet": self._delete_sheet,
            }.get(kind)
            if handler is None:
                raise SheetsError(400, f"Invalid requests[{i}]: {kind} is not in the stand-in")
            try:
                replies.append(handler(draft, body))
            except SheetsError as exc:
                raise SheetsError(
                    exc.code, f"Invalid requests[{i}].{kind}: {exc.message}"
                ) from None
        self.spreadsheets[book.id] = draft
        return {"spreadsheetId": book.id, "replies": replies}

    @staticmethod
    def _taken(book: Spreadsheet, title: str, but: Worksheet | None = None) -> bool:
        return any(w.title.lower() == title.lower() and w is not but for w in book.worksheets)

    def _add_sheet(self, book: Spreadsheet, body: dict[str, Any]) -> dict[str, Any]:
        props = body.get("properties", {})
        ids = {w.sheet_id for w in book.worksheets}
        sheet_id = props.get("sheetId", max(ids, default=0) + 1)
        if sheet_id in ids:
            raise SheetsError(400, f"Sheet with id {sheet_id} already exists.")
        title = props.get("title") or f"Sheet{len(book.worksheets) + 1}"
        if self._taken(book, title):
            raise SheetsError(
                400, f'A sheet with the name "{title}" already exists. Please enter another name.'
            )
        grid = props.get("gridProperties", {})
        sheet = Worksheet(
            title,
            [],
            sheet_id=sheet_id,
            row_count=grid.get("rowCount", DEFAULT_ROWS),
            column_count=grid.get("columnCount", DEFAULT_COLUMNS),
            frozen_rows=grid.get("frozenRowCount", 0),
            frozen_columns=grid.get("frozenColumnCount", 0),
        )
        index = min(props.get("index", len(book.worksheets)), len(book.worksheets))
        book.worksheets.insert(index, sheet)
        return {"addSheet": {"properties": sheet.properties(book.worksheets.index(sheet))}}

    def _update_sheet(self, book: Spreadsheet, body: dict[str, Any]) -> dict[str, Any]:
        props = body.get("properties", {})
        sheet = book.by_id(props.get("sheetId", 0))
        fields = [f.strip().replace("/", ".") for f in body.get("fields", "").split(",")]
        fields = [f for f in fields if f]
        if not fields:
            raise SheetsError(400, "'fields' is required: at least one field to update")
        grid = props.get("gridProperties", {})
        settable = {
            "title": ("title", props.get("title")),
            "gridProperties.rowCount": ("row_count", grid.get("rowCount")),
            "gridProperties.columnCount": ("column_count", grid.get("columnCount")),
            "gridProperties.frozenRowCount": ("frozen_rows", grid.get("frozenRowCount", 0)),
            "gridProperties.frozenColumnCount": (
                "frozen_columns",
                grid.get("frozenColumnCount", 0),
            ),
        }
        if "*" in fields or "gridProperties" in fields:
            names = [f for f in settable if "*" in fields or f.startswith("gridProperties.")]
            fields = [f for f in fields if f not in ("*", "gridProperties")] + names
        index = None
        for name in fields:
            if name == "index":
                index = props.get("index", 0)
                continue
            if name not in settable:
                raise SheetsError(400, f"{name} is not a field the stand-in updates")
            attribute, value = settable[name]
            if value is None:
                raise SheetsError(400, f"{name} is in fields but has no value")
            setattr(sheet, attribute, value)
        self._check(book, sheet)
        if index is not None:
            book.worksheets.remove(sheet)
            book.worksheets.insert(min(index, len(book.worksheets)), sheet)
        return {}

    def _check(self, book: Spreadsheet, sheet: Worksheet) -> None:
        if self._taken(book, sheet.title, but=sheet):
            raise SheetsError(
                400,
                f'A sheet with the name "{sheet.title}" already exists. Please enter another name.',
            )
        if sheet.row_count < 1 or sheet.column_count < 1:
            raise SheetsError(400, "A sheet must have at least one row and one column.")
        if sheet.frozen_rows >= sheet.row_count or sheet.frozen_columns >= sheet.column_count:
            raise SheetsError(400, "You can't freeze all visible rows (or columns) on the sheet.")
        sheet.crop()

    @staticmethod
    def _delete_sheet(book: Spreadsheet, body: dict[str, Any]) -> dict[str, Any]:
        sheet = book.by_id(body.get("sheetId"))
        if len(book.worksheets) == 1:
            raise SheetsError(400, "You can't remove all the sheets in a document.")
        book.worksheets.remove(sheet)
        return {}
