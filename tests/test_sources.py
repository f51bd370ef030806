"""Reading legacy sheets: the real gspread code against the sandbox's fake Sheets v4 API,
CSV and XLSX files, with provenance of every cell."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from b24kit.migrate.sources import (
    Grid,
    column_letter,
    gspread_client,
    read_csv,
    read_gsheet,
    read_xlsx,
    sheet_key,
    to_table,
)
from b24kit.sandbox import Sandbox
from b24kit.sandbox.server import RunningServer, start_in_thread

KEY = "1AbCdEfGhIjKlMnOpQrStUvWxYz_0123456789-abc"
# Two header rows; "Подрядчик" is merged over three columns (as implementers' sheets do).
ROWS = [
    ["№", "Клиент", "Телефон", "Дата", "Цена", "Подрядчик", "", "", "Статус"],
    ["", "", "", "", "", "Название", "Телефон", "Оценка", ""],
    [
        1,
        "ООО Ромашка",
        79001234567,
        45323,
        "125 000 руб.",
        "Тягач-Сервис",
        "8 900 765-43-21",
        5,
        "Оценить",
    ],
    [],
    [2, "ИП Петров", "8 (912) 000-00-00", "01.03.2024", 98000.5, "", "", "", "Оплачено"],
    ["№", "Клиент", "Телефон", "Дата", "Цена", "Название", "Телефон", "Оценка", "Статус"],
    [3, "Иван Сидоров", "", 45400, "", "Тягач-Сервис", "89007654321", "", "оценено"],
]
MERGES = [(0, 1, 5, 8), (0, 2, 0, 1), (0, 2, 8, 9)]


@pytest.fixture
def served() -> Iterator[tuple[Sandbox, RunningServer]]:
    box = Sandbox(limits="off")
    box.sheets.add(KEY, "Проекты 2023", {"Проекты": ROWS, "Архив": [["a"]]}, {"Проекты": MERGES})
    server = start_in_thread(box)
    yield box, server
    server.stop()


def test_gspread_end_to_end(served: tuple[Sandbox, RunningServer]) -> None:
    box, server = served
    client = gspread_client(endpoint=server.base_url)
    grid = read_gsheet(
        client, f"https://docs.google.com/spreadsheets/d/{KEY}/edit#gid=0", "Проекты"
    )
    assert box.sheets.requests >= 2, "gspread's own calls reached the fake over HTTP"
    table = to_table(grid, header_rows=2)
    assert table.headers == [
        "№",
        "Клиент",
        "Телефон",
        "Дата",
        "Цена",
        "Подрядчик / Название",
        "Подрядчик / Телефон",
        "Подрядчик / Оценка",
        "Статус",
    ], "the merged group names its sub-columns"
    first = table.rows[0]
    assert first.number == 3 and table.first_data_row == 3
    assert first.value("Телефон") == 79001234567, "unformatted: a phone stays digits"
    assert first.value("Дата") == 45323, "unformatted: a date stays a serial number"
    cell = first.cells["Подрядчик / Телефон"]
    assert cell.where == "Проекты!G3 (Подрядчик / Телефон)", "provenance of every cell"
    assert table.rows[1].blank, "the blank row is kept, to be reported"
    assert table.rows[3].repeats_header(table.headers), "a header pasted again is recognised"
    assert not table.rows[2].repeats_header(table.headers)
    assert [r.number for r in table.rows] == [3, 4, 5, 6, 7]


def test_gspread_missing_sheet(served: tuple[Sandbox, RunningServer]) -> None:
    import gspread

    client = gspread_client(endpoint=served[1].base_url)
    with pytest.raises(gspread.exceptions.SpreadsheetNotFound):
        read_gsheet(client, "nope")
    with pytest.raises(gspread.exceptions.WorksheetNotFound):
        read_gsheet(client, KEY, "Нет такого")


def test_formatted_values_would_mangle(served: tuple[Sandbox, RunningServer]) -> None:
    """Why unformatted: the default (formatted) rendering turns numbers into text."""
    client = gspread_client(endpoint=served[1].base_url)
    sheet = client.open_by_key(KEY).worksheet("Проекты")
    assert sheet.get_values()[2][3] == "45323"


def test_csv_in_windows_encoding_with_semicolons(tmp_path: Path) -> None:
    path = tmp_path / "projects.csv"
    path.write_bytes(
        'Клиент;Телефон;Цена\nООО Ромашка;8 900 123-45-67;"125 000,50"\n;;\n'.encode("cp1251")
    )
    table = to_table(read_csv(path))
    assert table.headers == ["Клиент", "Телефон", "Цена"]
    assert table.rows[0].value("Цена") == "125 000,50"
    assert table.rows[0].cells["Телефон"].where == "projects!B2 (Телефон)"
    assert table.rows[1].blank


def test_xlsx_with_merged_header_and_dates(tmp_path: Path) -> None:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = "Лист1"
    for row in ROWS[:3]:
        sheet.append(row)
    sheet.merge_cells("F1:H1")
    sheet["D3"] = datetime(2024, 2, 1)
    path = tmp_path / "projects.xlsx"
    book.save(path)
    table = to_table(read_xlsx(path), header_rows=2)
    assert table.headers[5:8] == [
        "Подрядчик / Название",
        "Подрядчик / Телефон",
        "Подрядчик / Оценка",
    ]
    assert table.rows[0].value("Дата") == datetime(2024, 2, 1), "date cells arrive as dates"
    with pytest.raises(ValueError, match="no worksheet"):
        read_xlsx(path, "Другой")


def test_header_names_without_text_and_duplicates() -> None:
    table = to_table(Grid("x", "s", [[], ["A", "", "A"], [1, 2, 3]]))
    assert table.headers == ["A", "column B", "A (2)"] and table.rows[0].number == 3
    assert table.repeated == {"A": ["A", "C"]}, "which columns share a name"


def test_a_cell_merged_down_data_rows_is_each_row_s() -> None:
    """People write a client, a manager or a status once for a group of projects and
    merge it down; the sheet keeps it in the top cell only. Each row it spans reads it,
    in the merge's first column, and says where it came from."""
    rows: list[list[object]] = [
        ["№", "Клиент", "Менеджер", "Цена", "Примечание", ""],
        [1, "ООО Ромашка", "Иванов", 100, "срочно", None],  # row 2
        [2, "", "", 200, "", None],  # row 3
        [3, "ИП Петров", "", 300, "", None],  # row 4
        [4, None, None, None, None, None],  # row 5
        [None, None, None, None, None, None],  # row 6: a merge drawn one row too far
        [5, "", "Сидоров", None, None, None],  # row 7: its own value under no merge
    ]
    merges = [
        (1, 3, 1, 2),  # Клиент B2:B3
        (1, 6, 2, 3),  # Менеджер C2:C6
        (1, 2, 4, 6),  # Примечание E2:F2, across columns
        (3, 5, 3, 5),  # D4:E5, down and across
    ]
    table = to_table(Grid("x", "Лист1", rows, merges))
    by = {row.number: row for row in table.rows}
    assert by[3].value("Клиент") == "ООО Ромашка"
    assert by[3].cells["Клиент"].where == "Лист1!B3 (Клиент, merged with B2)"
    assert by[2].cells["Клиент"].where == "Лист1!B2 (Клиент)", "the top cell is its own"
    assert [by[n].value("Менеджер") for n in (2, 3, 4, 5, 6, 7)] == [
        "Иванов",
        "Иванов",
        "Иванов",
        "Иванов",
        "Иванов",
        "Сидоров",
    ]
    assert by[2].value("column F") is None, "a merge across columns is its first column's"
    assert by[5].value("Цена") == 300 and by[5].value("Примечание") is None
    assert by[4].value("Клиент") == "ИП Петров", "a row's own value is never replaced"
    assert by[6].blank, "a row with nothing but a merge's value from above is blank"
    assert not by[5].blank, "row 5 has its own number"
    assert by[7].carried == {}


def test_a_formula_error_is_no_value(tmp_path: Path) -> None:
    """A cell whose formula failed holds "#N/A" or "#REF!" in an XLSX file (Excel stores
    the code), in a CSV export and in the values the Sheets API gives: the row keeps it
    as an error, never as a value, and is no blank row for it."""
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = "Лист1"
    sheet.append(["Клиент", "Цена", "Телефон"])
    sheet.append(["#N/A", 100, "#REF!"])
    sheet.append(["ООО Ромашка", " #div/0! ", "#хэштег"])
    path = tmp_path / "errors.xlsx"
    book.save(path)
    first, second = to_table(read_xlsx(path)).rows
    assert first.errors == {"Клиент": "#N/A", "Телефон": "#REF!"}
    assert first.value("Клиент") is None and first.value("Цена") == 100
    assert not first.blank
    assert second.errors == {"Цена": "#DIV/0!"}, "as Excel shows it, whatever the case"
    assert second.value("Телефон") == "#хэштег", "text that only starts with # is text"
    csv = tmp_path / "errors.csv"
    csv.write_bytes("Клиент;Цена\n#Н/Д;#ЗНАЧ!\n".encode("cp1251"))
    (row,) = to_table(read_csv(csv)).rows
    assert row.errors == {"Клиент": "#Н/Д", "Цена": "#ЗНАЧ!"}, "a Russian Excel's codes"
    assert row.filled == {}


def test_a_formula_error_merged_down_is_not_a_row_s_own() -> None:
    """A merge whose top cell shows #N/A made each row under it non-blank."""
    grid = Grid("x", "s", [["Клиент", "Цена"], ["#N/A", 1], [None, None]], [(1, 3, 0, 1)])
    first, second = to_table(grid).rows
    assert first.errors == {"Клиент": "#N/A"} and not first.blank
    assert second.errors == {"Клиент": "#N/A"} and second.blank


def test_a_header_merged_into_the_data_is_no_value() -> None:
    """A header cell merged down into the first data row names the column; the data row
    does not read the header's text as its value."""
    table = to_table(Grid("x", "s", [["Клиент", "Статус"], ["А", None]], [(0, 2, 1, 2)]))
    assert table.headers == ["Клиент", "Статус"]
    assert table.rows[0].value("Статус") is None


def test_a_sheet_of_blank_cells_is_empty() -> None:
    table = to_table(Grid("x", "s", [[], ["", " ", None], ["", ""]]))
    assert table.headers == [] and table.rows == []


def test_csv_with_old_mac_line_ends(tmp_path: Path) -> None:
    path = tmp_path / "mac.csv"
    path.write_bytes("Клиент,Цена\rООО Ромашка,10\rИП Сидоров,20\r".encode())
    assert read_csv(path).rows == [["Клиент", "Цена"], ["ООО Ромашка", "10"], ["ИП Сидоров", "20"]]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("Клиент,Цена,Груз\nООО Ромашка,1\x00,кран\n", "row 2, column B: a NUL character"),
        ('Клиент,Цена,Груз\nООО Ромашка,1,"' + "к" * 200_000 + '"\n', "line 2: not a readable CSV"),
        (
            'Клиент,Цена,Груз,Статус\nООО Ромашка,1,кран,новая\nИП,"2,щебень,новая\n',
            "row 3 (line 3), column B: a quote that is not closed takes the rest of the file",
        ),
    ],
    ids=["nul", "cell-over-the-limit", "quote-open-at-the-end"],
)
def test_csv_refused_where_it_goes_wrong(tmp_path: Path, text: str, reason: str) -> None:
    path = tmp_path / "s.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=re.escape(reason)):
        read_csv(path)


def test_a_latin1_sheet_is_not_taken_for_cp1251(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_bytes("Kunde,Ware\nMüller & Söhne,Bagger\nGrün AG,Kran\n".encode("latin-1"))
    with pytest.raises(ValueError, match="source.encoding"):
        read_csv(path)  # ü and ö are ь and ц in cp1251: lowercase Cyrillic, but a few letters
    assert read_csv(path, "latin-1").rows[1][0] == "Müller & Söhne"


@pytest.mark.parametrize("encoding", ["cp1251", "koi8-r"])
def test_a_sheet_in_capitals_is_read_in_its_own_code_page(tmp_path: Path, encoding: str) -> None:
    """Issue 16, item 3: the code page was chosen by which reading looked lowercase, so an
    all-capitals cp1251 sheet was read as KOI8-R junk («йкхемр»). Letter frequencies
    decide now, whatever the case."""
    path = tmp_path / "s.csv"
    path.write_bytes("КЛИЕНТ,ГРУЗ\nООО ТЯЖМАШ,ПОГРУЗЧИК\nИП СИДОРОВ,ЩЕБЕНЬ\n".encode(encoding))
    assert read_csv(path).rows[0] == ["КЛИЕНТ", "ГРУЗ"]


def test_no_guess_between_code_pages_without_evidence(tmp_path: Path) -> None:
    """Text that reads as Russian in both code pages («ОЕЙ» in cp1251 is «неи» in KOI8-R)
    is refused, asking for the encoding, instead of a coin toss that writes junk."""
    path = tmp_path / "s.csv"
    path.write_bytes("ОЕЙ,ООП\n1,2\n".encode("cp1251"))
    with pytest.raises(ValueError, match=r"both as cp1251 and as KOI8-R.*source.encoding"):
        read_csv(path)
    assert read_csv(path, "cp1251").rows[0] == ["ОЕЙ", "ООП"]


def test_a_workbook_given_as_csv_is_refused(tmp_path: Path) -> None:
    from openpyxl import Workbook

    path = tmp_path / "s.csv"
    Workbook().save(path)
    with pytest.raises(ValueError, match="an XLSX workbook .a zip file., not CSV text"):
        read_csv(path)
    path.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504)
    with pytest.raises(ValueError, match="an old .xls workbook"):
        read_csv(path)


def test_a_file_that_is_no_workbook_is_refused(tmp_path: Path) -> None:
    import zipfile

    path = tmp_path / "s.xlsx"
    path.write_text("Клиент,Цена\nООО Ромашка,10\n", encoding="utf-8")
    with pytest.raises(ValueError, match="not a readable XLSX workbook"):
        read_xlsx(path)
    with zipfile.ZipFile(path, "w") as packed:  # one member that says it unpacks to 300 MiB
        packed.writestr("xl/worksheets/sheet1.xml", b"<x/>")
        packed.infolist()[0].file_size = 300 * 2**20
    with pytest.raises(ValueError, match="a zip bomb"):
        read_xlsx(path)


def test_helpers() -> None:
    assert [column_letter(i) for i in (0, 25, 26, 701)] == ["A", "Z", "AA", "ZZ"]
    assert sheet_key(f"https://docs.google.com/spreadsheets/d/{KEY}/edit") == KEY
