"""``migrate init`` that one can run (issue 10, item 6): a messy sheet of our own → init
from a third folder, against the sandbox with the company blueprint applied → run refuses
the draft's TODOs, each at its line → the TODOs filled → dry run → run, and the portal
holds every deal in the pipeline and stage the filled map says."""

from __future__ import annotations

import csv
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from b24kit.sandbox import Sandbox
from b24kit.sandbox.server import start_in_thread
from tests.cli import ROOT, CliResult, run_cli
from tests.test_migrate import COMPANY, deployed

HEADER = [
    "№",
    "Клиент",
    "Телефон",
    "Цена клиенту",
    "Дата",
    "Статус",
    "Направление",
    "Менеджер",
    "Источник",
    "Комментарий",
]
# status words as people type them: one word in several cases and spacings
STATUSES = ["Новая", "новая ", " НОВАЯ", "Оценить", "считаем", "в работе", "Договор"]
DIRECTIONS = ["Аренда", "Перевозка", "Спецзаказ", ""]  # an empty cell: the default pipeline
MANAGERS = ["Иванов", "петрова", "Сидоренко"]  # two sandbox users (3, 4) and one unknown
SOURCES = ["звонок", "сайт", "авито"]
PRICES = ["125 000 руб.", "98000", "45 тыс.", "1 250 000 ₽", "310000,50"]
DATES = ["01.02.2024", "2024-03-15", "5.4.24", "1 февраля 2024"]
ROWS = 60

# how the test fills the draft's TODOs: the word -> the code a person chose
FILLED = {
    "считаем": "ESTIMATE",
    "в работе": "ESTIMATE_READY",
    "спецзаказ": "sales_cold",
    "авито": "ADVERTISING",
}
STAGE_OF = {"новая": "NEW", "оценить": "ESTIMATE", "договор": "CONTRACT"}
PIPELINE_OF = {"аренда": "sales_rental", "перевозка": "sales_transport", "": "sales_turnkey"}


def sheet_rows() -> list[list[str]]:
    rows = []
    for i in range(1, ROWS + 1):
        rows.append(
            [
                str(i),
                f"Заказчик Номер{i}",
                f"+7 900 {100 + i:03d}-{i % 100:02d}-{(i * 7) % 100:02d}",
                PRICES[i % len(PRICES)],
                DATES[i % len(DATES)],
                STATUSES[i % len(STATUSES)],
                DIRECTIONS[i % len(DIRECTIONS)],
                MANAGERS[i % len(MANAGERS)],
                SOURCES[i % len(SOURCES)],
                "позвонить после обеда" if i % 4 == 0 else "",
            ]
        )
    return rows


def count(values: list[str], word: str) -> int:
    return sum(" ".join(v.split()).lower() == word for v in values)


@pytest.fixture
def portal() -> Iterator[tuple[Sandbox, str]]:
    box = deployed()
    running = start_in_thread(box)
    try:
        yield box, box.webhook_url(running.base_url)
    finally:
        running.stop()


def b24kit(*args: str, cwd: Path) -> CliResult:
    result = run_cli(*args, cwd=cwd, env={"XDG_CONFIG_HOME": str(cwd / "cfg")})
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    return result


def fill(text: str) -> str:
    """What a person does with the draft: every TODO replaced, as FILLED says (each of the
    sheet's undecided words moved to the line of the code chosen, or a new line for it;
    the unknown user given an id)."""
    lines = text.replace("Сидоренко: TODO", "Сидоренко: 5").splitlines()
    for i, line in enumerate(lines):
        found = re.match(r"^(\s*)TODO: \[(.*)\]", line)
        if not found:
            continue
        pad, added = found.group(1), []
        for word in (w.strip() for w in found.group(2).split(",")):
            block = range(i - 1, -1, -1)
            siblings = [j for j in block if lines[j].startswith(pad + FILLED[word] + ": [")]
            above = next((j for j in block if not lines[j].startswith(pad)), 0)
            if siblings and siblings[0] > above:
                lines[siblings[0]] = lines[siblings[0]].replace("]", f", {word}]", 1)
            else:
                added.append(f"{pad}{FILLED[word]}: [{word}]")
        lines[i] = "\n".join(added)
    return "\n".join(line for line in lines if line) + "\n"


def deals(box: Sandbox) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    start = 0
    while True:
        page = box._run(
            "crm.deal.list",
            {
                "filter": {"ORIGINATOR_ID": "legacy-sheet"},
                "select": ["ORIGIN_ID", "CATEGORY_ID", "STAGE_ID", "ASSIGNED_BY_ID", "OPPORTUNITY"],
                "start": start,
            },
            1,
            frozenset({"crm"}),
            "t",
            False,
            metered=False,
        )
        for deal in page["result"]:
            found[str(deal["ORIGIN_ID"]).rsplit(":", 1)[-1]] = deal
        if "next" not in page:
            return found
        start = page["next"]


def test_init_fill_dry_run_run_from_any_folder(tmp_path: Path, portal: tuple[Sandbox, str]) -> None:
    box, url = portal
    shutil.copytree(ROOT / "blueprints", tmp_path / "blueprints")
    (tmp_path / "data").mkdir()
    rows = sheet_rows()
    with (tmp_path / "data" / "sheet.csv").open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([HEADER, *rows])
    (tmp_path / "other" / "dir").mkdir(parents=True)
    third = tmp_path / "third"
    third.mkdir()

    made = b24kit(
        "migrate",
        "init",
        "../blueprints/company.yaml",
        "--csv",
        "../data/sheet.csv",
        "--portal",
        url,
        "--out",
        "../other/dir/mapping.yaml",
        cwd=third,
    )
    assert made.returncode == 0, made.stderr
    mapping = tmp_path / "other" / "dir" / "mapping.yaml"
    text = mapping.read_text(encoding="utf-8")
    draft = yaml.safe_load(text)
    assert draft["blueprint"] == "../../blueprints/company.yaml"
    assert draft["source"] == {"csv": "../../data/sheet.csv", "header_rows": 1}
    assert draft["parent"]["fields"]["OPPORTUNITY"] == {"column": "Цена клиенту", "parse": "money"}
    assert draft["contact"]["name"] == "Клиент", "«Цена клиенту» is no client's name"
    statuses = [r[5] for r in rows]
    assert draft["parent"]["stage"]["column"] == "Статус"
    undecided = sorted(["считаем", "в работе"], key=lambda w: -count(statuses, w))
    assert draft["parent"]["stage"]["values"] == {
        "NEW": ["новая"],
        "ESTIMATE": ["оценить"],
        "CONTRACT": ["договор"],
        "TODO": undecided,  # the sheet's words only, most frequent first
    }
    assert f"# новая ×{count(statuses, 'новая')}" in text and count(statuses, "новая") > 20
    assert "# " + ", ".join(f"{w} ×{count(statuses, w)}" for w in undecided) in text
    assert "Новая заявка" not in text, "no stage words invented from the blueprint"
    route = draft["parent"]["route"]
    assert route["column"] == "Направление"
    assert route["values"] == {
        "sales_rental": ["аренда"],
        "sales_transport": ["перевозка"],
        "TODO": ["спецзаказ"],
    }
    assert draft["parent"]["fields"]["SOURCE_ID"]["values"] == {
        "CALL": ["звонок"],
        "WEB": ["сайт"],
        "TODO": ["авито"],
    }
    assert draft["users"] == {"Иванов": 3, "Сидоренко": "TODO", "петрова": 4}
    assert "Иван Иванов" in text and "no portal user of this name" in text

    # a draft with TODOs: exit 2, each TODO once, at its line, from yet another folder
    lines = text.splitlines()
    todo_lines = [i + 1 for i, line in enumerate(lines) if re.search(r"\bTODO\b[:\]]? ?", line)]
    todo_lines = [n for n in todo_lines if not lines[n - 1].lstrip().startswith("#")]
    for extra in ((), ("--dry-run",)):
        refused = b24kit("migrate", "run", str(mapping), "--portal", url, *extra, cwd=tmp_path)
        assert refused.returncode == 2, refused.stderr
        listed = re.findall(r"mapping\.yaml:(\d+):\d+: (\S+)", refused.stderr)
        assert [int(n) for n, _ in listed] == todo_lines
        assert [where for _, where in listed] == [
            "users.Сидоренко:",
            "parent.route.values.TODO:",
            "parent.stage.values.TODO:",
            "parent.fields.SOURCE_ID.values.TODO:",
        ]
        assert ", ".join(repr(w) for w in undecided) in refused.stderr
        assert box.portal.count_items(2) == 0, "nothing written"

    mapping.write_text(fill(text), encoding="utf-8")
    dry = b24kit(
        "migrate", "run", "../other/dir/mapping.yaml", "--portal", url, "--dry-run", cwd=third
    )
    assert dry.returncode == 0, dry.stderr
    assert f"rows read {ROWS}, valid {ROWS}, rejected 0" in dry.stdout, dry.stdout + dry.stderr
    assert "rejected row" not in dry.stderr
    assert f"parents: {ROWS} to create" in dry.stdout

    done = b24kit(
        "migrate", "run", "other/dir/mapping.yaml", "--portal", url, "--yes", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    on_portal = deals(box)
    parents = {k: v for k, v in on_portal.items() if k.isdigit()}
    assert len(parents) == ROWS
    categories = {
        c["name"]: int(c["id"])
        for c in box.call("crm.category.list", {"entityTypeId": 2})["categories"]
    }
    category = {p.code: categories.get(p.name, 0) for p in COMPANY.deal.pipelines}
    words = {**STAGE_OF, **{w: c for w, c in FILLED.items() if c.isupper()}}
    pipelines = {**PIPELINE_OF, "спецзаказ": "sales_cold"}
    users = {"иванов": "3", "петрова": "4", "сидоренко": "5"}
    for row in rows:
        deal = parents[row[0]]
        stage = words[" ".join(row[5].split()).lower()]
        pipeline = pipelines[row[6].lower()]
        assert int(deal["CATEGORY_ID"]) == category[pipeline], (row, deal)
        expected = stage if category[pipeline] == 0 else f"C{category[pipeline]}:{stage}"
        assert deal["STAGE_ID"] == expected, (row, deal)
        assert str(deal["ASSIGNED_BY_ID"]) == users[row[7].lower()], (row, deal)


def test_a_webhook_that_may_not_read_users_leaves_every_name_todo(
    tmp_path: Path, portal: tuple[Sandbox, str]
) -> None:
    box, url = portal
    crm_only = url.replace(box.token, box.add_webhook(1, ("crm",)))
    with (tmp_path / "sheet.csv").open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([HEADER, *sheet_rows()])
    made = b24kit(
        "migrate",
        "init",
        str(ROOT / "blueprints" / "company.yaml"),
        "--csv",
        "sheet.csv",
        "-p",
        crm_only,
        cwd=tmp_path,
    )
    assert made.returncode == 0, made.stderr
    assert yaml.safe_load(made.stdout)["users"] == dict.fromkeys(MANAGERS, "TODO")
    assert "The webhook may not read users: the 3 name(s)" in made.stderr
    (tmp_path / "empty.csv").write_text("", encoding="utf-8")
    empty = b24kit(
        "migrate",
        "init",
        str(ROOT / "blueprints" / "company.yaml"),
        "--csv",
        "empty.csv",
        cwd=tmp_path,
    )
    assert empty.returncode == 2 and "the sheet is empty" in empty.stderr
    assert len(empty.stderr.strip().splitlines()) == 1
