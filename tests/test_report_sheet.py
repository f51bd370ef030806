"""The management report written to a Google Sheet (issue 14, ``--to-sheet KEY``), through
gspread over real HTTP to the sandbox's Sheets v4 stand-in: written, then written again
with other rows, and read back the same sheet; and the stand-in's write endpoints
answering as the Sheets API reference says (grid limits, nulls, all-or-nothing)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from b24kit.migrate.sources import gspread_client
from b24kit.reports.model import ReportTable
from b24kit.reports.sheet import Written, write_tables
from b24kit.sandbox import Sandbox
from b24kit.sandbox.server import RunningServer, start_in_thread

KEY = "MGMT-SHEET-1"
FORMULA = '=HYPERLINK("http://evil.example","click")'


@pytest.fixture
def served() -> Iterator[tuple[Sandbox, Any]]:
    box = Sandbox(limits="off")
    box.sheets.add(KEY, "Management", {"Notes": [["kept by people", 1]]})
    server: RunningServer = start_in_thread(box)
    try:
        yield box, gspread_client(endpoint=server.base_url)
    finally:
        server.stop()


def sources(rows: list[tuple[str, int, int, float | None]]) -> ReportTable:
    return ReportTable(
        "sources",
        "Sources of first contact",
        ["source", "projects", "won", "avg_growth"],
        [{"source": s, "projects": p, "won": w, "avg_growth": g} for s, p, w, g in rows],
    )


def contractors(rows: list[dict[str, Any]], empty: str = "") -> ReportTable:
    return ReportTable(
        "contractors",
        "Contractors",
        ["contractor", "estimates", "avg_rating", "last_used"],
        rows,
        empty,
    )


def read(client: Any, title: str) -> tuple[list[list[Any]], dict[str, Any]]:
    """A worksheet's values (unformatted) and grid properties, read back through gspread."""
    spreadsheet = client.open_by_key(KEY)
    sheet = spreadsheet.worksheet(title)
    values = sheet.get_values(value_render_option="UNFORMATTED_VALUE")
    meta = spreadsheet.fetch_sheet_metadata()
    props = next(s["properties"] for s in meta["sheets"] if s["properties"]["title"] == title)
    return values, props


def test_to_sheet_writes_then_rewrites_the_same_worksheets(served: tuple[Sandbox, Any]) -> None:
    box, client = served
    first = [
        sources([("Сайт", 12, 5, 0.18), ("Звонок", 7, 4, None), (FORMULA, 3, 1, -0.1)]),
        contractors(
            [
                {"contractor": "ТрансЛогистик", "estimates": 9, "avg_rating": 4.5,
                 "last_used": "2024-05-20"},
                {"contractor": "Грузовичков", "estimates": 4, "avg_rating": None,
                 "last_used": "2024-04-02"},
            ]
        ),
    ]  # fmt: skip
    box.sheets.calls.clear()
    written = write_tables(client, KEY, first)
    assert box.sheets.calls == [
        "GET spreadsheet",  # gspread's open_by_key
        "GET spreadsheet",  # worksheets()
        "POST :batchUpdate",  # both worksheets made, sized, header frozen: one call
        "POST values:batchClear",
        "POST values:batchUpdate",
    ]
    assert [(w.title, w.rows, w.columns, w.created) for w in written] == [
        ("sources", 3, 4, True),
        ("contractors", 2, 4, True),
    ]
    values, props = read(client, "sources")
    assert values == [
        ["source", "projects", "won", "avg_growth"],
        ["Сайт", 12, 5, 0.18],
        ["Звонок", 7, 4, ""],  # None is an empty cell
        [FORMULA, 3, 1, -0.1],  # RAW: a formula-looking name stays text
    ]
    assert props["gridProperties"] == {"rowCount": 4, "columnCount": 4, "frozenRowCount": 1}
    assert read(client, "contractors")[0][2] == ["Грузовичков", 4, "", "2024-04-02"]

    # the next run: fewer sources, other figures, no contractor rows at all
    second = [
        sources([("Звонок", 8, 5, 0.05)]),
        contractors([], empty="No contractor was given an estimate in the period."),
    ]
    again = write_tables(client, KEY, second)
    assert [(w.title, w.rows, w.created) for w in again] == [
        ("sources", 1, False),
        ("contractors", 0, False),
    ]
    assert [w.sheet_id for w in again] == [w.sheet_id for w in written], "updated in place"
    values, props = read(client, "sources")
    assert values == [["source", "projects", "won", "avg_growth"], ["Звонок", 8, 5, 0.05]]
    assert props["gridProperties"] == {"rowCount": 2, "columnCount": 4, "frozenRowCount": 1}
    assert read(client, "contractors")[0] == [
        ["contractor", "estimates", "avg_rating", "last_used"],
        ["No contractor was given an estimate in the period.", "", "", ""],  # gspread pads
    ]
    titles = [ws.title for ws in client.open_by_key(KEY).worksheets()]
    assert titles == ["Notes", "sources", "contractors"]
    assert read(client, "Notes")[0] == [["kept by people", 1]], "other worksheets untouched"


def test_to_sheet_finds_its_worksheet_in_another_case(served: tuple[Sandbox, Any]) -> None:
    box, client = served
    box.sheets.add(KEY, "Management", {"Sources": [["old", "stale"], ["x", "y"], ["z", 1]]})
    [written] = write_tables(client, KEY, [sources([("Сайт", 1, 1, 0.0)])])
    assert (written.title, written.created) == ("Sources", False)
    assert read(client, "Sources")[0] == [
        ["source", "projects", "won", "avg_growth"],
        ["Сайт", 1, 1, 0],
    ]


def test_large_tables_are_written_in_bounded_calls(
    served: tuple[Sandbox, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    box, client = served
    monkeypatch.setattr("b24kit.reports.sheet.CELLS_PER_CALL", 40)  # 10 rows of 4 a call
    table = sources([(f"source {i}", i, i // 2, i / 100) for i in range(25)])
    box.sheets.calls.clear()
    [written] = write_tables(client, KEY, [table])
    assert box.sheets.calls.count("POST values:batchUpdate") == 3  # 26 rows: 10 + 10 + 6
    values, _ = read(client, "sources")
    assert len(values) == 26 and values[-1] == ["source 24", 24, 12, 0.24]
    assert written == Written("sources", 25, 4, True, written.sheet_id)


# The stand-in's write endpoints, called through gspread as it sends them ------------


def test_stand_in_refuses_a_write_outside_the_grid(served: tuple[Sandbox, Any]) -> None:
    import gspread

    _, client = served
    sheet = client.open_by_key(KEY).add_worksheet("small", rows=2, cols=2)
    with pytest.raises(gspread.exceptions.APIError) as caught:
        sheet.update([[1, 2], [3, 4], [5, 6]], "A1")
    assert caught.value.response.status_code == 400
    assert "exceeds grid limits. Max rows: 2, max columns: 2" in str(caught.value)
    sheet.resize(rows=3)
    sheet.update([[1, 2], [3, 4], [5, 6]], "A1")
    assert sheet.get_values(value_render_option="UNFORMATTED_VALUE") == [[1, 2], [3, 4], [5, 6]]


def test_stand_in_null_keeps_a_cell_and_clear_empties_it(served: tuple[Sandbox, Any]) -> None:
    _, client = served
    sheet = client.open_by_key(KEY).worksheet("Notes")
    answer = sheet.update([[None, "", 3]], "A1")
    assert answer["updatedRange"] == "'Notes'!A1:C1"
    assert sheet.get_values() == [["kept by people", "", "3"]]  # formatted: text
    sheet.update([["12", "TRUE", "'007"]], "A2", value_input_option="USER_ENTERED")
    assert sheet.get_values("A2:C2", value_render_option="UNFORMATTED_VALUE") == [[12, True, "007"]]
    sheet.batch_clear(["A1:A2"])
    assert sheet.get_values(value_render_option="UNFORMATTED_VALUE") == [
        ["", "", 3],
        ["", True, "007"],
    ]


def test_stand_in_batch_update_is_all_or_nothing(served: tuple[Sandbox, Any]) -> None:
    import gspread

    box, client = served
    spreadsheet = client.open_by_key(KEY)
    body = {
        "requests": [
            {"addSheet": {"properties": {"title": "fresh"}}},
            {"addSheet": {"properties": {"title": "NOTES"}}},  # names compare in any case
        ]
    }
    with pytest.raises(gspread.exceptions.APIError) as caught:
        spreadsheet.batch_update(body)
    assert 'requests[1].addSheet: A sheet with the name "NOTES" already exists' in str(caught.value)
    assert [ws.title for ws in spreadsheet.worksheets()] == ["Notes"], "fresh was not added"
    with pytest.raises(gspread.exceptions.APIError, match="valueInputOption"):
        spreadsheet.values_update("Notes!A1", body={"values": [[1]]})
    assert box.sheets.spreadsheets[KEY].worksheets[0].rows == [["kept by people", 1]]
