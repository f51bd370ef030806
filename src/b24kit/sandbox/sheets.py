"""A local stand-in for the Google Sheets v4 endpoints gspread reads:
``GET /v4/spreadsheets/{id}`` (metadata, with merges) and
``GET /v4/spreadsheets/{id}/values/{range}`` (values, FORMATTED or UNFORMATTED).

Spreadsheets are kept in memory: ``sheets.add(id, title, {worksheet: rows}, merges)``.
The real API trims trailing empty cells and rows, and so does this one.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote

A1 = re.compile(
    r"^(?:'?(?P<sheet>.+?)'?!)?(?P<c1>[A-Z]+)?(?P<r1>\d+)?(?::(?P<c2>[A-Z]+)?(?P<r2>\d+)?)?$"
)


def col_number(letters: str) -> int:
    n = 0
    for ch in letters:
        n = n * 26 + ord(ch) - 64
    return n


@dataclass
class Worksheet:
    title: str
    rows: list[list[Any]]
    merges: list[tuple[int, int, int, int]] = field(default_factory=list)  # 0-based, end excl.
    sheet_id: int = 0


@dataclass
class Spreadsheet:
    id: str
    title: str
    worksheets: list[Worksheet]


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


class FakeSheets:
    def __init__(self) -> None:
        self.spreadsheets: dict[str, Spreadsheet] = {}
        self.requests = 0

    def add(
        self,
        key: str,
        title: str,
        worksheets: dict[str, list[list[Any]]],
        merges: dict[str, list[tuple[int, int, int, int]]] | None = None,
    ) -> None:
        sheets = [
            Worksheet(name, rows, (merges or {}).get(name, []), i)
            for i, (name, rows) in enumerate(worksheets.items())
        ]
        self.spreadsheets[key] = Spreadsheet(key, title, sheets)

    def handles(self, path: str) -> bool:
        return path.startswith("/v4/spreadsheets/")

    def handle(self, path: str, query: str) -> tuple[int, bytes]:
        self.requests += 1
        params = {k: v[-1] for k, v in parse_qs(query).items()}
        parts = path[len("/v4/spreadsheets/") :].split("/", 2)
        sheet = self.spreadsheets.get(unquote(parts[0]))
        if sheet is None:
            return self._error(404, "Requested entity was not found.", "NOT_FOUND")
        if len(parts) == 1:
            return 200, self._json(self._metadata(sheet))
        if parts[1] == "values" and len(parts) == 3:
            return self._values(sheet, unquote(parts[2]), params)
        return self._error(400, f"unsupported call {path}", "INVALID_ARGUMENT")

    @staticmethod
    def _json(data: Any) -> bytes:
        return json.dumps(data, ensure_ascii=False).encode()

    def _error(self, code: int, message: str, status: str) -> tuple[int, bytes]:
        return code, self._json({"error": {"code": code, "message": message, "status": status}})

    @staticmethod
    def _metadata(sheet: Spreadsheet) -> dict[str, Any]:
        return {
            "spreadsheetId": sheet.id,
            "properties": {"title": sheet.title, "locale": "ru_RU", "timeZone": "Europe/Moscow"},
            "sheets": [
                {
                    "properties": {
                        "sheetId": ws.sheet_id,
                        "title": ws.title,
                        "index": i,
                        "sheetType": "GRID",
                        "gridProperties": {
                            "rowCount": max(len(ws.rows), 1000),
                            "columnCount": max((len(r) for r in ws.rows), default=26),
                        },
                    },
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
                for i, ws in enumerate(sheet.worksheets)
            ],
        }

    def _values(self, sheet: Spreadsheet, a1: str, params: dict[str, str]) -> tuple[int, bytes]:
        if any(w.title == a1.strip("'") for w in sheet.worksheets):
            a1 = f"'{a1.strip(chr(39))}'!A1:ZZZ"  # a bare title: the whole worksheet
        match = A1.match(a1)
        if match is None:
            return self._error(400, f"Unable to parse range: {a1}", "INVALID_ARGUMENT")
        name = match.group("sheet") or sheet.worksheets[0].title
        ws = next((w for w in sheet.worksheets if w.title == name), None)
        if ws is None:
            # a bare range name that is a worksheet title ("Sheet1")
            ws = next((w for w in sheet.worksheets if w.title == a1.strip("'")), None)
            if ws is None:
                return self._error(400, f"Unable to parse range: {a1}", "INVALID_ARGUMENT")
            match = A1.match("A1")
            assert match is not None
        r1 = int(match.group("r1") or 1) - 1
        r2 = int(match.group("r2")) if match.group("r2") else len(ws.rows)
        c1 = col_number(match.group("c1")) - 1 if match.group("c1") else 0
        c2 = col_number(match.group("c2")) if match.group("c2") else None
        rows = [row[c1:c2] for row in ws.rows[r1:r2]]
        unformatted = params.get("valueRenderOption") == "UNFORMATTED_VALUE"
        if not unformatted:
            rows = [[_formatted(v) for v in row] for row in rows]
        return 200, self._json(
            {
                "range": f"'{ws.title}'!{a1.split('!')[-1]}",
                "majorDimension": "ROWS",
                "values": _trim(rows),
            }
        )
