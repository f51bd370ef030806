"""Read legacy project sheets: a Google Sheet (through gspread), a CSV or an XLSX file.

Everything becomes a ``Table``: header names and rows of ``Cell``s that remember where they
came from (worksheet, row, column), so every rejection can name the exact cell. Google
Sheets are read with UNFORMATTED values so phones stay digits and dates stay serials.
"""

from __future__ import annotations

import csv
import functools
import io
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from b24kit.errors import InputError

Merge = tuple[int, int, int, int]  # start row, end row (excl.), start col, end col (excl.)


def column_letter(index: int) -> str:
    """0 -> A, 25 -> Z, 26 -> AA."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


# What a spreadsheet shows in a cell whose formula failed: Google Sheets' and Excel's codes
# (the values API, an XLSX file's cached value and a CSV export all give the text), and
# Excel's Russian ones, which a CSV saved from a Russian Excel holds. Never a name or a
# number: read as such, "#N/A" became a client.
FORMULA_ERRORS = frozenset(
    {
        "#N/A",
        "#REF!",
        "#VALUE!",
        "#DIV/0!",
        "#NAME?",
        "#NUM!",
        "#NULL!",
        "#ERROR!",
        "#SPILL!",
        "#CALC!",
        "#GETTING_DATA",
        "#Н/Д",
        "#ССЫЛКА!",
        "#ЗНАЧ!",
        "#ДЕЛ/0!",
        "#ИМЯ?",
        "#ЧИСЛО!",
        "#ПУСТО!",
    }
)


@dataclass(frozen=True)
class Cell:
    value: Any
    worksheet: str
    row: int  # 1-based, as the sheet shows it
    column: str  # letter, as the sheet shows it
    header: str
    merged_from: str | None = None  # the merge's top cell ("B5"), when the value is its

    @property
    def blank(self) -> bool:
        return _is_blank(self.value)

    @property
    def where(self) -> str:
        merged = f", merged with {self.merged_from}" if self.merged_from else ""
        return f"{self.worksheet}!{self.column}{self.row} ({self.header}{merged})"


@dataclass
class SheetRow:
    """One row: its values by header, and where each came from. The values are what every
    reader asks for (a 2,000-row sheet's cells are read ~40,000 times); a ``Cell``, with
    its provenance, is made only when asked for (``cells``): making one per cell up front
    was the larger part of reading a sheet."""

    number: int
    values: dict[str, Any]  # header -> the cell's value as read (None past the row's end)
    worksheet: str = ""
    letters: dict[str, str] = field(default_factory=dict)  # header -> its column's letter
    # header -> the cell above it whose value it shows: a cell of a vertical merge ("B5")
    carried: dict[str, str] = field(default_factory=dict)
    # the non-blank values: worked out once, when the row is made (no formula error: it
    # is no value, and reads as blank; ``errors`` keeps it, for the rejection)
    filled: dict[str, Any] = field(init=False, repr=False, compare=False)
    errors: dict[str, str] = field(init=False, repr=False, compare=False)
    # the row has a value of its own, not only ones carried down from a merge above
    own: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        filled = {h: v for h, v in self.values.items() if not _is_blank(v)}
        self.errors = {
            h: v.strip().upper()
            for h, v in filled.items()
            if type(v) is str and "#" in v and v.strip().upper() in FORMULA_ERRORS
        }
        for header in self.errors:
            del filled[header]
        self.filled = filled
        self.own = any(h not in self.carried for h in (*filled, *self.errors))

    def value(self, header: str) -> Any:
        """The cell's value, None when blank or not in the sheet."""
        return self.filled.get(header)

    @property
    def cells(self) -> dict[str, Cell]:
        return {
            header: Cell(
                value,
                self.worksheet,
                self.number,
                self.letters[header],
                header,
                self.carried.get(header),
            )
            for header, value in self.values.items()
        }

    @property
    def blank(self) -> bool:
        """No value of its own: a row whose only values are a merge's from above (a merge
        drawn one row too far) is blank, as it looks, and never a project."""
        return not self.own

    def repeats_header(self, headers: list[str]) -> bool:
        """A header pasted again in the middle of the data: at least two thirds of its
        filled cells (and two) are header names."""
        filled = self.filled
        if len(filled) < 2:
            return False
        names = _header_names(tuple(headers))
        # asked of every row: stop at the first miss more than the rule allows (a data row
        # misses at once)
        misses = len(filled) - max(2, len(filled) * 2 // 3)
        for value in filled.values():
            if str(value).strip().lower() not in names:
                misses -= 1
                if misses < 0:
                    return False
        return True


@functools.lru_cache(maxsize=16)
def _header_names(headers: tuple[str, ...]) -> frozenset[str]:
    """The headers as a pasted header row would read them (a sheet has one set of
    headers, asked for on every row: made once)."""
    return frozenset(h.split(" / ")[-1].strip().lower() for h in headers)


@dataclass
class Grid:
    source: str
    worksheet: str
    rows: list[list[Any]]
    merges: list[Merge] = field(default_factory=list)


@dataclass
class Table:
    source: str
    worksheet: str
    headers: list[str]
    rows: list[SheetRow]
    first_data_row: int
    # a header name the sheet has more than once -> its columns' letters ("Цена": ["E", "F"])
    repeated: dict[str, list[str]] = field(default_factory=dict)


def _filled(grid: Grid) -> list[list[Any]]:
    """Merged cells carry their top-left value across the whole merge, as people read it."""
    rows = [list(r) for r in grid.rows]
    for r0, r1, c0, c1 in grid.merges:
        if r0 >= len(rows) or c0 >= len(rows[r0]):
            continue
        value = rows[r0][c0]
        for r in range(r0, min(r1, len(rows))):
            while len(rows[r]) < c1:
                rows[r].append(None)
            for c in range(c0, c1):
                if rows[r][c] in (None, ""):
                    rows[r][c] = value
    return rows


def to_table(grid: Grid, header_rows: int = 1) -> Table:
    """The first non-blank row starts the header; ``header_rows`` rows make it (a merged
    group above sub-columns reads as "Group / Sub")."""
    filled = _filled(grid)
    start = next((i for i, r in enumerate(filled) if any(_has_text(v) for v in r)), None)
    if start is None:  # nothing but blank cells (or none): an empty sheet
        return Table(grid.source, grid.worksheet, [], [], 1)
    width = max((len(r) for r in filled), default=0)
    header_lines = [
        filled[i] + [None] * (width - len(filled[i]))
        for i in range(start, min(start + header_rows, len(filled)))
    ]
    headers: list[str] = []
    letters: dict[str, list[str]] = {}
    for col in range(width):
        parts: list[str] = []
        for line in header_lines:
            text = re.sub(r"\s+", " ", str(line[col] or "")).strip()
            if text and (not parts or parts[-1] != text):
                parts.append(text)
        name = " / ".join(parts) or f"column {column_letter(col)}"
        letters.setdefault(name, []).append(column_letter(col))
        base, n = name, 2
        while name in headers:
            name = f"{base} ({n})"
            n += 1
        headers.append(name)
    rows = []
    first = start + header_rows
    letters_of = {header: column_letter(col) for col, header in enumerate(headers)}
    carried = _carried(grid, first, width)
    for index in range(first, len(grid.rows)):  # (width: one header a column)
        raw = grid.rows[index]
        # a short row's missing cells are None; a long row's extra ones have no header
        line = raw[:width] if len(raw) >= width else [*raw, *[None] * (width - len(raw))]
        values = dict(zip(headers, line, strict=True))
        origin = {}
        for col, (value, top) in carried.get(index, {}).items():
            values[headers[col]], origin[headers[col]] = value, top
        rows.append(SheetRow(index + 1, values, grid.worksheet, letters_of, origin))
    repeated = {name: cols for name, cols in letters.items() if len(cols) > 1}
    return Table(grid.source, grid.worksheet, headers, rows, first + 1, repeated)


def _carried(grid: Grid, first: int, width: int) -> dict[int, dict[int, tuple[Any, str]]]:
    """Data rows' cells under a vertical merge, by row index then column: the merge's value
    and its top cell ("B5"). People read a cell merged down several projects' rows as each
    row's (a client, a manager, a status written once for a group); the sheet holds it
    only in the top cell. It is carried down the merge's first column only: a merge
    across columns shows one value, which is that column's (copied into the next
    columns, a note would become a price). Merges that start in the header are the
    header's (``_filled``); cells that hold a value of their own keep it."""
    out: dict[int, dict[int, tuple[Any, str]]] = {}
    for r0, r1, c0, _c1 in grid.merges:
        if r0 < first or r1 - r0 < 2 or r0 >= len(grid.rows) or c0 >= width:
            continue
        top = grid.rows[r0]
        value = top[c0] if c0 < len(top) else None
        if _is_blank(value):
            continue
        where = f"{column_letter(c0)}{r0 + 1}"
        for r in range(r0 + 1, min(r1, len(grid.rows))):
            row = grid.rows[r]
            if c0 >= len(row) or _is_blank(row[c0]):
                out.setdefault(r, {})[c0] = (value, where)
    return out


def _has_text(value: Any) -> bool:
    return value is not None and (not isinstance(value, str) or bool(value.strip()))


# ------------------------------------------------------------------- readers
# cp1251 and KOI8-R both decode any byte, and each reads the other's text as Cyrillic
# junk; the reading whose letters are as frequent as Russian's is the right one. Letter
# frequencies of Russian text, in percent (case does not count: a sheet may be in capitals).
_FREQUENCY = dict(
    zip(
        "оеаинтсрвлкмдпуяыьгзбчйхжшюцщэфъё",
        (
            10.97,
            8.45,
            8.01,
            7.35,
            6.70,
            6.26,
            5.47,
            4.73,
            4.54,
            4.40,
            3.49,
            3.21,
            2.98,
            2.81,
            2.62,
            2.01,
            1.90,
            1.74,
            1.70,
            1.65,
            1.59,
            1.44,
            1.21,
            0.97,
            0.94,
            0.73,
            0.64,
            0.48,
            0.36,
            0.32,
            0.26,
            0.04,
            0.04,
        ),
        strict=True,
    )
)
_CYRILLIC = re.compile(r"[А-Яа-яЁё]")
_LETTER = re.compile(r"[^\W\d_]")
RUSSIAN = 4.0  # mean frequency of a reading's letters: Russian text scores 5 to 6, junk 3
EVIDENCE = 1.25  # how much better one reading must score to be chosen without being told


def _russian_score(text: str) -> float:
    """The mean Russian frequency of the text's Cyrillic letters (0: hardly any)."""
    letters = _CYRILLIC.findall(text)
    if not letters or len(letters) < 0.1 * len(_LETTER.findall(text)):
        return 0.0  # a few Cyrillic letters in Latin text: umlauts and accents (ü is ь in cp1251)
    return sum(_FREQUENCY.get(c.lower(), 0.0) for c in letters) / len(letters)


def decode_sheet(data: bytes, name: str, encoding: str | None = None) -> str:
    """A CSV export's text: the given encoding; else UTF-8 (a BOM or not) or UTF-16 with
    its BOM; else cp1251 or KOI8-R, whichever reads as Russian text, if the evidence is
    clear. Otherwise refused, naming the option that settles it."""
    if encoding:
        try:
            return data.decode(encoding)
        except (LookupError, UnicodeDecodeError) as exc:
            raise InputError(f"{name}: cannot be read as {encoding}: {exc}") from None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    candidates = {enc: data.decode(enc, errors="replace") for enc in ("cp1251", "koi8-r")}
    scores = {enc: _russian_score(text) for enc, text in candidates.items()}
    best, other = sorted(scores, key=lambda enc: scores[enc], reverse=True)
    if scores[best] < RUSSIAN:
        raise InputError(
            f"{name}: not UTF-8, and neither cp1251 nor KOI8-R reads as Russian text; "
            "name the file's encoding in the mapping (source.encoding)"
        )
    if scores[best] < EVIDENCE * scores[other]:
        raise InputError(
            f"{name}: not UTF-8, and it reads as Russian text both as cp1251 and as KOI8-R; "
            "name the file's encoding in the mapping (source.encoding: cp1251 or koi8-r)"
        )
    return candidates[best]


# the first bytes of a workbook: an XLSX is a zip file, an old .xls an OLE2 compound file
WORKBOOKS = {
    b"PK\x03\x04": "an XLSX workbook (a zip file)",
    b"\xd0\xcf\x11\xe0": "an old .xls workbook",
}


def read_csv(path: Path, encoding: str | None = None) -> Grid:
    data = path.read_bytes()
    for magic, what in WORKBOOKS.items():
        if data.startswith(magic):
            raise InputError(
                f"{path}: {what}, not CSV text: name an XLSX under source.xlsx, or save the "
                "sheet as CSV"
            )
    text = decode_sheet(data, str(path), encoding)
    sample = text[:8192]
    try:
        dialect: Any = csv.Sniffer().sniff(sample, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    # newline="": a line may end in \n, \r\n or a lone \r (an old Mac export)
    reader = csv.reader(io.StringIO(text, newline=""), dialect)
    try:
        rows = [list(r) for r in reader]
    except csv.Error as exc:  # a cell over the csv module's limit (128 KiB) and the like
        raise InputError(f"{path}: line {reader.line_num}: not a readable CSV: {exc}") from None
    if "\x00" in text:
        _refuse_nul(rows, str(path))
    _check_quotes(rows, str(path), dialect.delimiter)
    _check_quote_at_end(rows, text, str(path), dialect)
    return Grid(str(path), path.stem, rows)


def _refuse_nul(rows: list[list[str]], name: str) -> None:
    """A NUL character is in no text a person typed: the file is binary, or UTF-16 saved
    without its BOM (read as UTF-8, every other byte is NUL)."""
    for number, row in enumerate(rows, 1):
        for col, cell in enumerate(row):
            if "\x00" in cell:
                raise InputError(
                    f"{name}: row {number}, column {column_letter(col)}: a NUL character; "
                    "the file is binary or UTF-16 without its BOM: save it as UTF-8 CSV"
                )


def _check_quotes(rows: list[list[str]], name: str, delimiter: str) -> None:
    """An unbalanced quote makes one cell of the lines after it, rows swallowed silently:
    a cell holding a line that looks like a row of the sheet (as many delimiters as half
    the header's columns) is refused with where it starts."""
    width = len(rows[0]) if rows else 0
    line = 1
    for number, row in enumerate(rows, 1):
        breaks = 0  # the lines the row's cells go on to
        for col, cell in enumerate(row):
            if "\n" not in cell:  # most cells: nothing more to look at
                continue
            inner = cell.split("\n")[1:]
            breaks += len(inner)
            if width > 2 and any(part.count(delimiter) >= max(2, width // 2) for part in inner):
                raise InputError(
                    f"{name}: row {number} (line {line}), column {column_letter(col)}: a quote "
                    f"that is not closed takes the next {len(inner)} line(s) into one cell; "
                    "close it (or double a quote meant as text) and read the sheet again"
                )
        line += 1 + breaks


def _check_quote_at_end(rows: list[list[str]], text: str, name: str, dialect: Any) -> None:
    """A quote opened in the last row and never closed takes the rest of the file into its
    cell: the row is shorter than the header and that cell holds the missing delimiters."""
    width = len(rows[0]) if rows else 0
    if len(rows) < 2 or not dialect.quotechar or text.count(dialect.quotechar) % 2 == 0:
        return
    last = rows[-1]
    if 0 < len(last) < width and last[-1].count(dialect.delimiter) >= width - len(last):
        line = 1 + sum(1 + sum(cell.count("\n") for cell in row) for row in rows[:-1])
        raise InputError(
            f"{name}: row {len(rows)} (line {line}), column {column_letter(len(last) - 1)}: "
            "a quote that is not closed takes the rest of the file into one cell; close it "
            "(or double a quote meant as text) and read the sheet again"
        )


MAX_XLSX_UNPACKED = 256 * 1024 * 1024  # an XLSX that unpacks to more is a zip bomb


def read_xlsx(path: Path, worksheet: str | None = None) -> Grid:
    from openpyxl import load_workbook

    with path.open("rb") as handle:  # by content: a workbook named .csv is still one
        try:
            with zipfile.ZipFile(handle) as packed:
                unpacked = sum(info.file_size for info in packed.infolist())
            if unpacked > MAX_XLSX_UNPACKED:
                raise InputError(
                    f"{path}: unpacks to {unpacked // 2**20} MiB, more than "
                    f"{MAX_XLSX_UNPACKED // 2**20} MiB: not a sheet to migrate (a zip bomb?)"
                )
            handle.seek(0)
            book = load_workbook(handle, data_only=True)
        except InputError:
            raise
        except Exception as exc:  # noqa: BLE001 - whatever a broken workbook makes openpyxl raise
            raise InputError(
                f"{path}: not a readable XLSX workbook ({type(exc).__name__}: {exc})"
            ) from None
    try:
        sheet = book[worksheet] if worksheet else book.active
    except KeyError:
        raise InputError(
            f"{path}: no worksheet {worksheet!r} (has: {', '.join(book.sheetnames)})"
        ) from None
    rows = [[cell.value for cell in row] for row in sheet.iter_rows()]
    merges = [
        (r.min_row - 1, r.max_row, r.min_col - 1, r.max_col) for r in sheet.merged_cells.ranges
    ]
    return Grid(str(path), sheet.title, rows, merges)


SHEET_KEY = re.compile(r"/spreadsheets/d/([a-zA-Z0-9_-]+)")
GOOGLE_SHEETS = "https://sheets.googleapis.com"


def sheet_key(url_or_key: str) -> str:
    match = SHEET_KEY.search(url_or_key)
    return match.group(1) if match else url_or_key.strip()


def gspread_client(credentials: Path | None = None, endpoint: str | None = None) -> Any:
    """A gspread client: with a service-account or OAuth credentials file as gspread reads
    them, or, with ``endpoint``, pointed at a local stand-in (the sandbox's fake Sheets API)
    through a requests adapter, so gspread's own code runs unchanged."""
    import gspread

    if endpoint:
        import requests
        from requests.adapters import HTTPAdapter

        base = endpoint.rstrip("/")

        class Redirect(HTTPAdapter):
            def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
                request.url = base + request.url[len(GOOGLE_SHEETS) :]
                return super().send(request, *args, **kwargs)

        session = requests.Session()
        session.mount(GOOGLE_SHEETS, Redirect())
        return gspread.Client(auth=None, session=session)  # type: ignore[arg-type]
    if credentials is None:
        return gspread.oauth()
    text = credentials.read_text(encoding="utf-8")
    if '"service_account"' in text:
        return gspread.service_account(filename=str(credentials))
    return gspread.oauth(credentials_filename=str(credentials))


def read_gsheet(client: Any, url_or_key: str, worksheet: str | None = None) -> Grid:
    from gspread.utils import ValueRenderOption

    spreadsheet = client.open_by_key(sheet_key(url_or_key))
    sheet = spreadsheet.worksheet(worksheet) if worksheet else spreadsheet.sheet1
    rows = sheet.get_values(value_render_option=ValueRenderOption.unformatted)
    meta = spreadsheet.fetch_sheet_metadata()
    merges: list[Merge] = []
    for info in meta.get("sheets", []):
        if info["properties"]["sheetId"] == sheet.id:
            merges = [
                (m["startRowIndex"], m["endRowIndex"], m["startColumnIndex"], m["endColumnIndex"])
                for m in info.get("merges", [])
            ]
    return Grid(f"{spreadsheet.title} ({sheet_key(url_or_key)})", sheet.title, rows, merges)
